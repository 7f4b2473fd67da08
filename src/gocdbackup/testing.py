"""Public in-memory fakes of every port, so users (and our own unit tests) can exercise backup
automation without a database or a bucket.

Also re-exports the real helpers for integration tests: :class:`LocalPostgres` (a throwaway
local server), :func:`build_gocdnext_fixture` (a gocdnext-shaped database) and
:func:`fill_store` (the objects its rows reference, in a real store); and :func:`sandbox`, all
of them together (server, database, filled store, empty repository) to try gocdbackup on.
"""

from __future__ import annotations

import atexit
import builtins
import hashlib
import io
import json
import os
import secrets
import shlex
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from attrs import define, evolve, field
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from gocdbackup._facade import GocdBackup
from gocdbackup.context import Clock, OpContext, SystemClock
from gocdbackup.drivers import gocdnext_fixture
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.gocdnext_fixture import FixtureSpec, decrypt_gocdnext, encrypt_gocdnext
from gocdbackup.drivers.gocdnext_fixture import build as build_gocdnext_fixture
from gocdbackup.drivers.local_server import LocalPostgres
from gocdbackup.errors import (
    ConfigError,
    DatabaseNotFound,
    IntegrityError,
    ObjectMissing,
    PostgresError,
    ToolFailed,
)
from gocdbackup.model.artifacts import ObjectRef
from gocdbackup.model.backup import ConsistencyPoint, DatabaseInfo, TableRows
from gocdbackup.model.keys import check_object_key
from gocdbackup.model.orphans import RowRef
from gocdbackup.model.progress import ProgressEvent
from gocdbackup.model.render import kv_table
from gocdbackup.ports import ObjectInfo, ObjectStore, read_each

__all__ = [
    "FakeClock",
    "FakeDatabase",
    "FakeDb",
    "FixtureSpec",
    "LocalPostgres",
    "MemoryStore",
    "RecordingProgress",
    "Sandbox",
    "build_gocdnext_fixture",
    "decrypt_gocdnext",
    "encrypt_gocdnext",
    "fill_store",
    "sandbox",
]


class MemoryStore:
    """A thread-safe dict-backed :class:`~gocdbackup.ports.ObjectStore`.

    ``versioned=True`` behaves like a versioned bucket: every write makes a new version (its
    id is reported by :meth:`list`), older versions stay readable with ``open_read(...,
    version=...)`` until the key is deleted.  ``lists`` counts listing calls by prefix."""

    def __init__(
        self, url: str = "memory://fake", *, clock: Clock | None = None, versioned: bool = False
    ) -> None:
        self._url = url
        self._clock: Clock = clock or SystemClock()
        self.objects: dict[str, bytes] = {}
        self.modified: dict[str, datetime] = {}
        self.versions: dict[str, dict[str, bytes]] = {}
        self.versioned = versioned
        self._lock = threading.Lock()
        self.writes = 0
        self.lists: list[str] = []
        #: ``(prefix, start_after)`` of every :meth:`scan` call
        self.scans: list[tuple[str, str]] = []
        #: what :meth:`location_exists` answers (False: a mistyped URL)
        self.exists_location = True

    @property
    def url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"MemoryStore({self._url!r}, {len(self.objects)} objects)"

    def read(self, key: str) -> bytes:
        check_object_key(key)
        with self._lock:
            try:
                return self.objects[key]
            except KeyError:
                raise ObjectMissing(key) from None

    def write(self, key: str, data: bytes) -> None:
        check_object_key(key)
        with self._lock:
            self.objects[key] = bytes(data)
            self.modified[key] = self._clock.now()
            self.writes += 1
            if self.versioned:
                history = self.versions.setdefault(key, {})
                history[f"v{self.writes}"] = bytes(data)

    def version_of(self, key: str) -> str | None:
        """The current version id of ``key`` (None on an unversioned store)."""
        with self._lock:
            return self._latest(key)

    def _latest(self, key: str) -> str | None:
        history = self.versions.get(key)
        return next(reversed(history)) if history else None

    def exists(self, key: str) -> bool:
        check_object_key(key)
        with self._lock:
            return key in self.objects

    def location_exists(self) -> bool:
        return self.exists_location

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            self.lists.append(prefix)
            return iter(self._infos(prefix, ""))

    def scan(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            self.scans.append((prefix, start_after))
            return iter(self._infos(prefix, start_after))

    def _infos(self, prefix: str, start_after: str) -> builtins.list[ObjectInfo]:
        """The objects under ``prefix`` after ``start_after``, in key order (lock held)."""
        return [
            self._info(k) for k in sorted(self.objects) if k.startswith(prefix) and k > start_after
        ]

    def _info(self, key: str) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size_bytes=len(self.objects[key]),
            modified_at=self.modified[key],
            version=self._latest(key),
        )

    def stat(self, key: str) -> ObjectInfo | None:
        check_object_key(key)
        with self._lock:
            return self._info(key) if key in self.objects else None

    def delete(self, key: str) -> None:
        check_object_key(key)
        with self._lock:
            self.objects.pop(key, None)
            self.modified.pop(key, None)
            self.versions.pop(key, None)

    @contextmanager
    def open_read(
        self, key: str, size_hint: int | None = None, version: str | None = None
    ) -> Iterator[io.BytesIO]:
        if version is None or not self.versioned:
            yield io.BytesIO(self.read(key))
            return
        with self._lock:
            data = self.versions.get(key, {}).get(version)
        if data is None:
            raise ObjectMissing(f"{key} version {version}")
        yield io.BytesIO(data)

    def read_many(self, wanted: Sequence[tuple[str, str | None]]) -> dict[str, bytes]:
        return read_each(self, wanted)

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        data = b"".join(chunks)  # all or nothing, like the real stores
        self.write(key, data)
        return len(data)

    # -- fault injection ---------------------------------------------------------------------

    def corrupt(self, key: str, *, offset: int = -1) -> None:
        """Flip one byte of ``key`` (the last by default)."""
        with self._lock:
            data = bytearray(self.objects[key])
            data[offset] ^= 0xFF
            self.objects[key] = bytes(data)


class FakeClock:
    """Starts at ``start`` and moves ``step`` forward at every ``now()``."""

    def __init__(
        self, start: datetime | None = None, step: timedelta = timedelta(seconds=1)
    ) -> None:
        self.current = start or datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
        self.step = step
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            value = self.current
            self.current += self.step
            return value

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self.current += delta


class RecordingProgress:
    """A progress sink that keeps every event (``events``); optionally runs ``hook(event)``."""

    def __init__(self, hook: Any = None) -> None:
        self.events: list[ProgressEvent] = []
        self._hook = hook

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)
        if self._hook is not None:
            self._hook(event)

    def phases(self) -> list[str]:
        return list(dict.fromkeys(e.phase for e in self.events))


@define
class FakeDb:
    tables: dict[str, int] = field(factory=dict)
    #: the artefact-store objects this database's rows reference
    objects: list[ObjectRef] = field(factory=list)
    #: the rows referencing objects that an orphan scan sees (``object_rows``)
    rows: list[RowRef] = field(factory=list)
    goose: int | None = 86
    owner: str = "gocdnext"
    encoding: str = "UTF8"
    #: bytes of filler in the dump, deterministic from the table contents
    payload_bytes: int = 3 * 1024 * 1024


_MAGIC = b"FAKEDUMP\n"


def _filler(seed: bytes, n: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:n])


def fake_dump(db: FakeDb) -> bytes:
    header = json.dumps({"tables": db.tables, "goose": db.goose}, sort_keys=True).encode()
    return _MAGIC + len(header).to_bytes(4, "big") + header + _filler(header, db.payload_bytes)


def parse_fake_dump(data: bytes) -> FakeDb:
    if not data.startswith(_MAGIC):
        raise IntegrityError("the dump's table of contents is unreadable: not a fake dump")
    n = int.from_bytes(data[len(_MAGIC) : len(_MAGIC) + 4], "big")
    header = json.loads(data[len(_MAGIC) + 4 : len(_MAGIC) + 4 + n])
    return FakeDb(tables=dict(header["tables"]), goose=header["goose"])


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


class _Snapshot:
    def __init__(self, owner: FakeDatabase, db: FakeDb, at: datetime) -> None:
        self._owner = owner
        self._db = FakeDb(
            tables=dict(db.tables),
            objects=list(db.objects),
            rows=list(db.rows),
            goose=db.goose,
            owner=db.owner,
            encoding=db.encoding,
            payload_bytes=db.payload_bytes,
        )
        self._at = at

    @property
    def snapshot_id(self) -> str:
        return "00000003-00000002-1"

    def point(self) -> ConsistencyPoint:
        return ConsistencyPoint(
            snapshot_at=self._at,
            snapshot_id=self.snapshot_id,
            wal_lsn="0/1A2B3C4D",
            timeline=1,
            server_version="16.4",
            server_version_num=160004,
            goose_version=self._db.goose,
        )

    def database(self) -> DatabaseInfo:
        return DatabaseInfo(
            name=self._owner.name,
            owner=self._db.owner,
            encoding=self._db.encoding,
            size_bytes=self._db.payload_bytes,
            pg_dump_version="16.4",
        )

    def count_rows(self) -> tuple[TableRows, ...]:
        return tuple(TableRows(name=k, rows=v) for k, v in sorted(self._db.tables.items()))

    def referenced_objects(self) -> list[ObjectRef]:
        return sorted(self._db.objects, key=lambda r: r.key)

    @contextmanager
    def dump(self, ctx: OpContext) -> Iterator[_Stream]:
        self._owner.events.append("dump")
        yield _Stream(fake_dump(self._db), self._owner.fail_dump_after)


class FakeDatabase:
    """A :class:`~gocdbackup.ports.Database` over a dict of :class:`FakeDb`.

    ``events`` records every state-changing call (``create``, ``load``, ``swap``, ``drop``), so
    tests can assert that a failed restore never touched the target.  Fault knobs:
    ``fail_dump_after`` (bytes), ``fail_load`` (bool), ``drift`` (table → rows added on load),
    ``goose_after_load`` (the goose version a load leaves behind).
    """

    def __init__(
        self,
        name: str = "gocdnext",
        databases: dict[str, FakeDb] | None = None,
        *,
        roles: Iterable[str] = ("postgres", "gocdnext"),
        clock: Clock | None = None,
    ) -> None:
        self._name = name
        self.databases: dict[str, FakeDb] = databases if databases is not None else {}
        self.roles = set(roles)
        self.events: list[str] = []
        self.fail_dump_after: int | None = None
        self.fail_load = False
        self.drift: dict[str, int] = {}
        self.goose_after_load: int | None = None
        #: what ``storage_setting`` answers: (value, encrypted credentials) or None
        self.setting: tuple[dict[str, Any], bytes | None] | None = None
        #: the time ``retire_rows`` stamps (the system clock where None)
        self.clock = clock

    @property
    def name(self) -> str:
        return self._name

    @contextmanager
    def snapshot(self, ctx: OpContext) -> Iterator[_Snapshot]:
        if self._name not in self.databases:
            raise DatabaseNotFound(f"database {self._name!r} does not exist")
        yield _Snapshot(self, self.databases[self._name], ctx.now())

    def exists(self, name: str) -> bool:
        return name in self.databases

    def role_exists(self, role: str) -> bool:
        return role in self.roles

    def create(self, name: str, *, owner: str | None, encoding: str) -> None:
        if name in self.databases:
            raise PostgresError(f"database {name!r} already exists")
        self.events.append(f"create {name}")
        self.databases[name] = FakeDb(
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

    def storage_setting(self) -> tuple[dict[str, Any], bytes | None] | None:
        return self.setting

    def object_rows_now(self, keys: Iterable[str]) -> dict[str, str]:
        """Rows of database ``name`` as they are now (tests change ``objects`` meanwhile)."""
        db = self.databases[self._name]
        current = {r.key: r.status for r in db.objects}
        current.update({r.key: r.status for r in db.rows})
        return {k: current[k] for k in keys if k in current}

    def source_id(self) -> str:
        return f"fake://{self._name}"

    def object_rows(self, start_after: str = "") -> Iterator[RowRef]:
        """The target database's ``rows`` with keys after ``start_after``, in key order (read
        when iteration starts, like the real driver's transaction)."""
        if self._name not in self.databases:
            raise DatabaseNotFound(f"database {self._name!r} does not exist")
        rows = sorted(
            (r for r in self.databases[self._name].rows if r.key > start_after),
            key=lambda r: (r.key, r.table, r.row_id),
        )
        yield from rows

    def retire_rows(self, rows: Iterable[RowRef]) -> int:
        """Artefacts go to ``deleting`` (stamped now), cache rows and log archives leave
        ``rows``; only rows still as given (table, id, key and status) are changed."""
        db = self.databases[self._name]
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
            if row.table == "artifacts":
                kept.append(evolve(row, status="deleting", stamped_at=now))
        db.rows = kept
        return changed

    def inspect(self, name: str) -> tuple[int | None, tuple[TableRows, ...]]:
        db = self.databases[name]
        return db.goose, tuple(TableRows(name=k, rows=v) for k, v in sorted(db.tables.items()))

    def swap(self, staging: str, target: str) -> None:
        self.events.append(f"swap {staging} -> {target}")
        self.databases[target] = self.databases.pop(staging)

    def drop(self, name: str) -> None:
        self.events.append(f"drop {name}")
        self.databases.pop(name, None)


# -- a real gocdnext installation to try things on ------------------------------------------------


def fill_store(
    dsn: str,
    store: str | ObjectStore,
    *,
    storage_options: dict[str, Any] | None = None,
    seed: int = 0,
) -> int:
    """Put a real object into ``store`` for every object the gocdnext database at ``dsn``
    references; the number of objects written.

    That is a small ``.tar.gz`` for every ``ready`` artefact and ``ready`` cache row, and a
    gzipped log for every job whose logs are archived (``job_runs.logs_archive_uri``), each at
    the key its row names.  Like gocdnext's agents, it then records each artefact's and cache's
    true size and SHA-256 in its row, so ``dsn`` must be allowed to update those tables (the
    role that built the database is).  Pending rows get no object, as in gocdnext.  The
    contents are random, from ``seed``.

    ``store`` is an :class:`~gocdbackup.ports.ObjectStore` or an fsspec URL
    (``file:///…``, ``s3://bucket/prefix``, ``gs://…``), opened with ``storage_options``.
    Typically used on a database made by :func:`build_gocdnext_fixture`::

        build_gocdnext_fixture(dsn, FixtureSpec(), secret_key=os.urandom(32))
        fill_store(dsn, "file:///tmp/artifacts")
    """
    target = FsspecStore(store, storage_options) if isinstance(store, str) else store
    return gocdnext_fixture.write_objects(dsn, target, seed=seed)


SANDBOX_DATABASE = "gocdnext"
_PASSPHRASE_FILE = "repo-passphrase"  # noqa: S105 - a file name


@define(kw_only=True, eq=False, repr=False)
class Sandbox:
    """A throwaway gocdnext installation, all under :attr:`dir`: an embedded PostgreSQL holding
    a gocdnext-shaped database, an artefact store filled with the objects its rows reference,
    and an empty, initialised repository.  Made by :func:`sandbox`; :meth:`close` (or the end
    of its ``with`` block) stops the server and removes everything."""

    #: the directory everything lives in
    dir: Path
    #: libpq DSN of the gocdnext database, as the server's superuser (its password is a
    #: throwaway one, but it is in here: not shown by ``repr``)
    db: str = field(repr=False)
    #: the artefact store's URL (``file://…``)
    artifacts: str
    #: the repository's URL (``file://…``), initialised, no backups yet
    repo: str
    #: file holding the repository's passphrase (mode 0600)
    password_file: Path
    #: objects written into the artefact store
    objects: int
    #: the database's ``GOCDNEXT_SECRET_KEY`` (32 bytes), to check its encrypted values
    secret_key: bytes = field(repr=False)
    _stack: ExitStack = field(init=False, factory=ExitStack, repr=False)

    @property
    def password(self) -> str:
        """The repository's passphrase (read from :attr:`password_file`)."""
        return self.password_file.read_text()

    def env(self) -> dict[str, str]:
        """The environment the CLI reads: ``GOCDBACKUP_DB``, ``GOCDBACKUP_REPO``,
        ``GOCDBACKUP_ARTIFACTS`` and ``GOCDBACKUP_PASSWORD`` (the passphrase itself), e.g.
        ``subprocess.run(["gocdbackup", "list"], env={**os.environ, **sb.env()})``."""
        return {
            "GOCDBACKUP_DB": self.db,
            "GOCDBACKUP_REPO": self.repo,
            "GOCDBACKUP_ARTIFACTS": self.artifacts,
            "GOCDBACKUP_PASSWORD": self.password,
        }

    def exports(self) -> list[str]:
        """:meth:`env` as POSIX shell ``export`` lines; the passphrase is read from its file
        when the line runs (``"$(cat …)"``), so it is never printed."""
        lines = [
            f"export {name}={shlex.quote(value)}"
            for name, value in self.env().items()
            if name != "GOCDBACKUP_PASSWORD"
        ]
        lines.append(f'export GOCDBACKUP_PASSWORD="$(cat {shlex.quote(str(self.password_file))})"')
        return lines

    def close(self) -> None:
        """Stop the server and remove everything the sandbox made (again: nothing)."""
        atexit.unregister(self.close)
        self._stack.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _summary(self) -> list[tuple[str, Any]]:
        return [
            ("dir", str(self.dir)),
            ("db", _dsn_without_password(self.db)),
            ("artifacts", f"{self.artifacts} ({self.objects} objects)"),
            ("repo", self.repo),
            ("password_file", str(self.password_file)),
        ]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._summary())
        return f"Sandbox({fields})"

    def _repr_html_(self) -> str:
        return kv_table(self._summary(), caption="gocdbackup sandbox")


def _dsn_without_password(dsn: str) -> str:
    params = {k: v for k, v in conninfo_to_dict(dsn).items() if k != "password"}
    return make_conninfo("", **params)


def _sandbox_dir(directory: str | Path | None, stack: ExitStack) -> Path:
    """The sandbox's directory, made now (or, if it exists, checked empty); ``stack`` removes
    what was made.  Its removal is registered before it is made: an interrupt right after the
    ``mkdir`` must not leave it behind."""
    if directory is not None:
        path = Path(directory).absolute()
        if path.exists():
            if not path.is_dir() or any(path.iterdir()):
                raise ConfigError(f"the sandbox directory {path} is not an empty directory")
            stack.callback(_empty, path)  # it was there before: leave it, empty
            return path
        if _make_dir(path, stack):
            return path
        raise ConfigError(f"the sandbox directory {path} was just made by someone else")
    while True:
        path = Path(tempfile.gettempdir()) / f"gocdbackup-sandbox-{secrets.token_hex(6)}"
        if _make_dir(path, stack):
            return path


def _make_dir(path: Path, stack: ExitStack) -> bool:
    """Make ``path`` (mode 0700, with its parents), removed with ``stack``; False if it
    exists already (then it is not ours, and left alone)."""
    ours = [True]

    def remove() -> None:
        if ours[0]:
            shutil.rmtree(path, ignore_errors=True)

    stack.callback(remove)
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        ours[0] = False
        return False
    return True


def _empty(path: Path) -> None:
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def sandbox(
    directory: str | Path | None = None,
    *,
    spec: FixtureSpec | None = None,
    pg_bindir: str | None = None,
) -> Sandbox:
    """Start a throwaway gocdnext installation to try gocdbackup on (a few seconds).

    Starts an embedded PostgreSQL (the ``embedded`` extra, or a ``pg_bindir``
    with ``initdb`` and ``pg_ctl``) listening on 127.0.0.1 only, creates a gocdnext-shaped
    database (``spec``; small by default), fills an artefact store with the objects its rows
    reference (:func:`fill_store`) and initialises an empty repository whose passphrase is in
    a file.  Everything lives under ``directory``, which must be absent or empty (default: a
    new temporary directory).  Use it as a context manager, or call :meth:`Sandbox.close`
    (also done at interpreter exit)::

        with sandbox() as sb:
            gb = GocdBackup(sb.repo, password_file=sb.password_file)
            gb.backup(sb.db, artifacts=sb.artifacts)
    """
    with ExitStack() as stack:
        path = _sandbox_dir(directory, stack)
        server = stack.enter_context(
            LocalPostgres.start(
                bindir=pg_bindir, password=secrets.token_hex(16), parent_dir=str(path)
            )
        )
        secret_key = os.urandom(32)
        gocdnext_fixture.create_database(server.dsn(), SANDBOX_DATABASE)
        db = server.dsn(SANDBOX_DATABASE)
        gocdnext_fixture.build(db, spec, secret_key=secret_key)
        (path / "artifacts").mkdir()
        artifacts = f"file://{path}/artifacts"  # laid out like /var/lib/gocdnext/artifacts
        objects = fill_store(db, artifacts)
        password_file = path / _PASSPHRASE_FILE
        password_file.touch(mode=0o600)
        password_file.write_text(secrets.token_urlsafe(24))
        repo = f"file://{path}/repo"
        GocdBackup.init(repo, password_file=password_file)
        made = Sandbox(
            dir=path,
            db=db,
            artifacts=artifacts,
            repo=repo,
            password_file=password_file,
            objects=objects,
            secret_key=secret_key,
        )
        made._stack = stack.pop_all()  # ready: from now on close() tears it down
    atexit.register(made.close)
    return made
