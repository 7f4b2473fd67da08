"""What a fake database holds (:class:`FakeDatabaseContents`) and the dump
:class:`~gocdbackup.testing.databases.FakePostgres` streams of it."""

from __future__ import annotations

import hashlib
import json
import os

from attrs import define, evolve, field

from gocdbackup.errors import IntegrityError
from gocdbackup.gocdnext.secrets import ENCRYPTED_COLUMNS
from gocdbackup.model.artifacts import ObjectKind, ObjectRef
from gocdbackup.model.backup import RunMark
from gocdbackup.model.orphans import RowRef
from gocdbackup.model.secrets import SealedValue
from gocdbackup.ports_store import ObjectStore

_ALL_ENCRYPTED = [c.name for c in ENCRYPTED_COLUMNS]
#: the tables whose encrypted column gocdnext declares NOT NULL (the others may hold a NULL)


@define
class FakeDatabaseContents:
    """What one fake database holds."""

    #: table name → row count
    tables: dict[str, int] = field(factory=dict)
    #: the artefact-store objects this database's rows reference (what a backup copies:
    #: :meth:`FakeGocdnext.referenced_objects`)
    objects: list[ObjectRef] = field(factory=list)
    #: the rows referencing objects that an orphan scan sees (:meth:`FakeGocdnext.object_rows`)
    rows: list[RowRef] = field(factory=list)
    goose: int | None = 86
    owner: str = "gocdnext"
    encoding: str = "UTF8"
    #: bytes of filler in the dump, deterministic from the table contents
    payload_bytes: int = 3 * 1024 * 1024
    #: the values sealed with gocdnext's key (:meth:`FakeGocdnext.sealed_values`)
    sealed: list[SealedValue] = field(factory=list)
    #: the names of the encrypted columns this database has (an older gocdnext lacks some)
    encrypted_columns: list[str] = field(factory=lambda: list(_ALL_ENCRYPTED))
    #: the slugs of its projects (:meth:`FakeGocdnext.project_slugs`)
    projects: list[str] = field(factory=list)
    #: its newest run (:meth:`FakeGocdnext.newest_run`)
    newest_run: RunMark | None = None

    def copy(self) -> FakeDatabaseContents:
        """A copy whose lists and tables can change without changing these."""
        return evolve(
            self,
            tables=dict(self.tables),
            objects=list(self.objects),
            rows=list(self.rows),
            sealed=list(self.sealed),
            encrypted_columns=list(self.encrypted_columns),
            projects=list(self.projects),
        )


_MAGIC = b"FAKEDUMP\n"


def _filler(seed: bytes, n: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:n])


def fake_dump(db: FakeDatabaseContents) -> bytes:
    """The dump :class:`FakePostgres` streams of ``db``: its tables and goose version, then
    deterministic filler."""
    header = json.dumps({"tables": db.tables, "goose": db.goose}, sort_keys=True).encode()
    return _MAGIC + len(header).to_bytes(4, "big") + header + _filler(header, db.payload_bytes)


def parse_fake_dump(data: bytes) -> FakeDatabaseContents:
    if not data.startswith(_MAGIC):
        raise IntegrityError("the dump's table of contents is unreadable: not a fake dump")
    n = int.from_bytes(data[len(_MAGIC) : len(_MAGIC) + 4], "big")
    header = json.loads(data[len(_MAGIC) + 4 : len(_MAGIC) + 4 + n])
    return FakeDatabaseContents(tables=dict(header["tables"]), goose=header["goose"])


def artifact_objects(store: ObjectStore, n: int, *, size: int = 1000) -> list[ObjectRef]:
    """``n`` artefacts of random bytes (``size`` and up) written into ``store`` under
    gocdnext's layout, and the ready rows that reference them (their true sizes and
    SHA-256): ``FakeDatabaseContents(objects=...)`` for a backup of a fake installation."""
    refs = []
    for i in range(n):
        data = os.urandom(size + i)
        key = f"run/r{i % 7}/job/j{i}/{i:08x}"
        store.write(key, data)
        refs.append(
            ObjectRef(
                kind=ObjectKind.ARTIFACT,
                key=key,
                row_id=str(i),
                status="ready",
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        )
    return refs
