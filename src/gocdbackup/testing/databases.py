"""In-memory fakes of the two database ports: :class:`FakePostgres` (a generic PostgreSQL server
holding named databases, with fault knobs) and :class:`FakeGocdnext` (gocdnext's rows, over the
same server's databases).  A database's contents are a :class:`FakeDatabaseContents`: tables
with row counts, the goose version, gocdnext's object-referencing rows and its sealed values
(:func:`~gocdbackup.testing.sealed.fill_sealed` seals some under a key)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from attrs import evolve

from gocdbackup.context import Clock, OpContext
from gocdbackup.errors import (
    ConfigError,
    DatabaseNotFound,
    PostgresError,
    ToolFailed,
)
from gocdbackup.gocdnext.schema import Table
from gocdbackup.gocdnext.secrets import EncryptedColumn, Form
from gocdbackup.model.artifacts import ObjectRef
from gocdbackup.model.backup import ConsistencyPoint, DatabaseInfo, RunMark, TableRows
from gocdbackup.model.orphans import RowRef
from gocdbackup.model.secrets import Reseal, SealedBatch, SealedValue, column_of, values_of
from gocdbackup.testing.contents import FakeDatabaseContents, fake_dump, parse_fake_dump


class _Stream:
    def __init__(self, data: bytes, fail_after: int | None) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._fail_after = fail_after

    def read(self, n: int = -1) -> bytes:
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise ToolFailed("pg_dump", -9, "killed by the test")
        end = len(self._data) if n < 0 else min(len(self._data), self._pos + n)
        if self._fail_after is not None:
            end = min(end, self._fail_after + 1)
        chunk = bytes(self._data[self._pos : end])
        self._pos = end
        return chunk


class FakeSnapshot:
    """A :class:`~gocdbackup.ports.Snapshot`: a copy of the database's contents taken when it
    was exported."""

    def __init__(
        self, server: FakePostgres, contents: FakeDatabaseContents, at: datetime, snapshot_id: str
    ) -> None:
        self._server = server
        self.contents = contents.copy()
        self._at = at
        self._id = snapshot_id

    @property
    def snapshot_id(self) -> str:
        return self._id

    def point(self) -> ConsistencyPoint:
        return ConsistencyPoint(
            snapshot_at=self._at,
            snapshot_id=self.snapshot_id,
            wal_lsn="0/1A2B3C4D",
            timeline=1,
            server_version="16.4",
            server_version_num=160004,
            goose_version=self.contents.goose,
        )

    def database(self) -> DatabaseInfo:
        return DatabaseInfo(
            name=self._server.name,
            owner=self.contents.owner,
            encoding=self.contents.encoding,
            size_bytes=self.contents.payload_bytes,
            pg_dump_version="16.4",
        )

    def count_rows(self) -> tuple[TableRows, ...]:
        return tuple(TableRows(name=k, rows=v) for k, v in sorted(self.contents.tables.items()))

    @contextmanager
    def dump(self, ctx: OpContext) -> Iterator[_Stream]:
        self._server.events.append("dump")
        yield _Stream(fake_dump(self.contents), self._server.fail_dump_after)


class FakePostgres:
    """A :class:`~gocdbackup.ports.Postgres` server whose databases are ``databases`` (name →
    :class:`FakeDatabaseContents`); ``name`` is the one its connection parameters name.

    ``events`` records ``dump`` and every state-changing call (``create``, ``load``, ``swap``,
    ``drop``), so tests can assert that a failed restore never touched the target.  Fault
    knobs: ``fail_dump_after`` (bytes), ``fail_load`` (bool), ``drift`` (table → rows added on
    load), ``goose_after_load`` (the goose version a load leaves behind).  ``snapshots`` holds
    the contents of each snapshot while it is held open, by id (what
    :meth:`FakeGocdnext.referenced_objects` reads).
    """

    def __init__(
        self,
        name: str = "gocdnext",
        databases: dict[str, FakeDatabaseContents] | None = None,
        *,
        roles: Iterable[str] = ("postgres", "gocdnext"),
    ) -> None:
        self._name = name
        self.databases: dict[str, FakeDatabaseContents] = databases if databases is not None else {}
        self.roles = set(roles)
        self.events: list[str] = []
        self.fail_dump_after: int | None = None
        self.fail_load = False
        self.drift: dict[str, int] = {}
        self.goose_after_load: int | None = None
        self.snapshots: dict[str, FakeDatabaseContents] = {}
        self._exported = 0

    def __repr__(self) -> str:
        return f"FakePostgres({self._name!r}, {len(self.databases)} database(s))"

    @property
    def name(self) -> str:
        return self._name

    def source_id(self) -> str:
        return f"fake://{self._name}"

    @contextmanager
    def snapshot(self, ctx: OpContext) -> Iterator[FakeSnapshot]:
        if self._name not in self.databases:
            raise DatabaseNotFound(f"database {self._name!r} does not exist")
        self._exported += 1
        snap = FakeSnapshot(
            self, self.databases[self._name], ctx.now(), f"00000003-00000002-{self._exported}"
        )
        self.snapshots[snap.snapshot_id] = snap.contents
        try:
            yield snap
        finally:
            del self.snapshots[snap.snapshot_id]

    def exists(self, name: str) -> bool:
        return name in self.databases

    def role_exists(self, role: str) -> bool:
        return role in self.roles

    def create(self, name: str, *, owner: str | None, encoding: str) -> None:
        if name in self.databases:
            raise PostgresError(f"database {name!r} already exists")
        self.events.append(f"create {name}")
        self.databases[name] = FakeDatabaseContents(
            tables={}, goose=None, owner=owner or "postgres", encoding=encoding
        )

    def load(
        self,
        chunks: Iterable[bytes],
        name: str,
        *,
        role: str | None,
        min_tool_version: str,
        ctx: OpContext,
    ) -> None:
        self.events.append(f"load {name}")
        if self.fail_load:
            raise ToolFailed("pg_restore", 1, "pg_restore: error: injected failure")
        data = bytearray()
        for c in chunks:  # like pg_restore: consumes the stream, stops on its errors
            ctx.check()
            data += c
        restored = parse_fake_dump(bytes(data))
        tables = {k: v + self.drift.get(k, 0) for k, v in restored.tables.items()}
        db = self.databases[name]
        db.tables = tables
        db.goose = self.goose_after_load if self.goose_after_load is not None else restored.goose

    def restore_part(
        self,
        parts: Iterable[bytes],
        name: str,
        *,
        role: str | None,
        min_tool_version: str,
        section: str,
        objects: tuple[str, Sequence[str]] | None = None,
        jobs: int = 1,
    ) -> None:
        """Records the call and reads ``parts`` (the fake's dumps carry no table layout, so a
        restore never loads them by parts)."""
        self.events.append(f"restore {section} {name}")
        for _ in parts:
            pass

    def count_rows(self, name: str, schema: str, table: str) -> int:
        return self.databases[name].tables.get(f"{schema}.{table}", 0)

    def empty_table(self, name: str, schema: str, table: str) -> None:
        self.databases[name].tables[f"{schema}.{table}"] = 0

    def inspect(
        self, name: str, counted: Mapping[str, int] | None = None
    ) -> tuple[int | None, tuple[TableRows, ...]]:
        db = self.databases[name]
        known = counted or {}
        rows = {k: known.get(k, v) for k, v in db.tables.items()}
        return db.goose, tuple(TableRows(name=k, rows=v) for k, v in sorted(rows.items()))

    def swap(self, staging: str, target: str) -> None:
        self.events.append(f"swap {staging} -> {target}")
        self.databases[target] = self.databases.pop(staging)

    def drop(self, name: str) -> None:
        self.events.append(f"drop {name}")
        self.databases.pop(name, None)


class FakeGocdnext:
    """A :class:`~gocdbackup.ports.GocdnextData` over ``server``'s database ``server.name``:
    its ``objects`` (read in a snapshot) and ``rows`` (read now).  ``setting`` is what
    :meth:`storage_setting` answers; ``clock`` the time :meth:`retire_rows` stamps (the system
    clock where None).  Its ``sealed`` values are read and resealed like the driver's, with
    compare-and-set; ``fail_reseal`` makes :meth:`reseal` roll back (True: always; N: after N);
    ``batch_rows`` is how many values :meth:`sealed_batches` gives at a time."""

    def __init__(self, server: FakePostgres, *, clock: Clock | None = None) -> None:
        self.server = server
        #: what ``storage_setting`` answers: (value, encrypted credentials) or None
        self.setting: tuple[dict[str, Any], bytes | None] | None = None
        self.clock = clock
        self.fail_reseal: bool | int = False
        self.batch_rows = 3

    def __repr__(self) -> str:
        return f"FakeGocdnext({self.server.name!r})"

    @property
    def name(self) -> str:
        return self.server.name

    def source_id(self) -> str:
        return self.server.source_id()

    def _contents(self) -> FakeDatabaseContents:
        if self.server.name not in self.server.databases:
            raise DatabaseNotFound(f"database {self.server.name!r} does not exist")
        return self.server.databases[self.server.name]

    def referenced_objects(self, snapshot_id: str) -> list[ObjectRef]:
        """The ``objects`` of the snapshot ``snapshot_id`` (which must still be held open)."""
        contents = self.server.snapshots.get(snapshot_id)
        if contents is None:
            raise PostgresError(f"invalid snapshot identifier {snapshot_id!r} (not held open)")
        return sorted(contents.objects, key=lambda r: r.key)

    def storage_setting(self) -> tuple[dict[str, Any], bytes | None] | None:
        return self.setting

    def newest_run(self, snapshot_id: str) -> RunMark | None:
        contents = self.server.snapshots.get(snapshot_id)
        if contents is None:
            raise PostgresError(f"invalid snapshot identifier {snapshot_id!r} (not held open)")
        return contents.newest_run

    def project_slugs(self) -> list[str]:
        return sorted(self._contents().projects)

    def object_rows_now(self, keys: Iterable[str]) -> dict[str, str]:
        """Rows as they are now (tests change ``objects`` and ``rows`` meanwhile)."""
        db = self._contents()
        current = {r.key: r.status for r in db.objects}
        current.update({r.key: r.status for r in db.rows})
        return {k: current[k] for k in keys if k in current}

    def object_rows(self, start_after: str = "") -> Iterator[RowRef]:
        """The ``rows`` with keys after ``start_after``, in key order (read when iteration
        starts, like the real driver's transaction)."""
        rows = sorted(
            (r for r in self._contents().rows if r.key > start_after),
            key=lambda r: (r.key, r.table, r.row_id),
        )
        yield from rows

    def retire_rows(self, rows: Iterable[RowRef]) -> int:
        """Artefacts go to ``deleting`` (stamped now), cache rows and log archives leave
        ``rows``; only rows still as given (table, id, key and status) are changed."""
        db = self._contents()
        wanted = {(r.table, r.row_id, r.key, r.status) for r in rows}
        if not wanted:
            return 0
        now = self.clock.now() if self.clock is not None else datetime.now(UTC)
        kept: list[RowRef] = []
        changed = 0
        for row in db.rows:
            if (row.table, row.row_id, row.key, row.status) not in wanted:
                kept.append(row)
                continue
            changed += 1
            if row.table == Table.ARTIFACTS:
                kept.append(evolve(row, status="deleting", stamped_at=now))
        db.rows = kept
        return changed

    def encrypted_columns_present(self, columns: Sequence[EncryptedColumn]) -> list[str]:
        return [c.name for c in columns if c.name in self._contents().encrypted_columns]

    def sealed_batches(
        self, columns: Sequence[EncryptedColumn], *, keys: bool = True
    ) -> Iterator[SealedBatch]:
        """The ``sealed`` values of the present ``columns`` (as given, rows as added),
        ``batch_rows`` at a time, read when iteration starts (one snapshot)."""
        db = self._contents()
        for column in (c for c in columns if c.name in db.encrypted_columns):
            values = [v for v in db.sealed if v.column == column.name]
            keyed = keys or column.form is Form.HEX_MAP
            for at in range(0, len(values), self.batch_rows):
                some = values[at : at + self.batch_rows]
                yield SealedBatch(
                    column=column.name,
                    blobs=[v.blob for v in some],
                    row_keys=[v.row_key for v in some] if keyed else (),
                    entries=[v.entry for v in some] if column.form is Form.HEX_MAP else (),
                )

    def rows_holding(
        self, column: EncryptedColumn, blobs: Sequence[bytes]
    ) -> dict[bytes, list[str]]:
        if column.form is Form.HEX_MAP:
            raise ConfigError(f"{column.name} is read with its row keys: nothing to look up")
        found: dict[bytes, list[str]] = {b: [] for b in blobs}
        for v in self._contents().sealed:
            if v.column == column.name and v.blob in found:
                found[v.blob].append(v.row_key)
        return {b: keys for b, keys in found.items() if keys}

    def sealed_values(self, columns: Sequence[EncryptedColumn]) -> Iterator[SealedValue]:
        return values_of(self.sealed_batches(columns))

    def reseal(self, changes: Sequence[Reseal]) -> int:
        """All or nothing: checked first (as the driver does), then each value whose row (and
        entry) still holds the old blob gets the new one; how many did."""
        db = self._contents()
        for change in changes:
            if column_of(change).name not in db.encrypted_columns:
                raise PostgresError(f"column {change.value.column} does not exist")
        fail = self.fail_reseal
        if fail is True or (type(fail) is int and fail <= 0):
            raise PostgresError("the reseal transaction failed and was rolled back (injected)")
        self.fail_reseal = fail - 1 if type(fail) is int else fail
        at = {(v.column, v.row_key, v.entry): n for n, v in enumerate(db.sealed)}
        changed = 0
        for change in changes:
            n = at.get((change.value.column, change.value.row_key, change.value.entry))
            if n is not None and db.sealed[n].blob == change.value.blob:
                db.sealed[n] = evolve(db.sealed[n], blob=change.blob)
                changed += 1
        return changed
