"""L1: the ports every use case talks to, split by who uses them: :class:`ObjectStore` (the
repository and the artefact store), :class:`Postgres` (generic PostgreSQL: backup and restore)
and :class:`GocdnextData` (gocdnext's rows: artefacts, orphans, discovery).  Drivers and the
fakes in ``gocdbackup.testing`` implement them; callers can supply their own.  The store's
port lives in :mod:`gocdbackup.ports_store` and is re-exported here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from gocdbackup.context import OpContext
from gocdbackup.gocdnext.secrets import EncryptedColumn
from gocdbackup.model.artifacts import ObjectRef
from gocdbackup.model.backup import ConsistencyPoint, DatabaseInfo, RunMark, TableRows
from gocdbackup.model.drill import RunLogs
from gocdbackup.model.orphans import RowRef
from gocdbackup.model.project_secrets import KubeSecret
from gocdbackup.model.secrets import Reseal, SealedBatch, SealedValue
from gocdbackup.ports_store import DumpStream, ObjectInfo, ObjectListing, ObjectStore, read_each


class Snapshot(Protocol):
    """One exported ``REPEATABLE READ`` snapshot of the database being backed up, held open (its
    exporting transaction alive) for as long as the context :meth:`Postgres.snapshot` made it
    in; other sessions of the same database can read in it meanwhile by its
    :attr:`snapshot_id` (``pg_dump --snapshot``, ``SET TRANSACTION SNAPSHOT``)."""

    @property
    def snapshot_id(self) -> str:
        """The id ``pg_export_snapshot()`` gave, valid while the snapshot is held open."""
        ...

    def point(self) -> ConsistencyPoint:
        """Facts about the snapshot: time, WAL LSN, timeline, server version, and the schema's
        migration version (gocdnext's goose version, where the driver is told how to read
        it; None otherwise)."""
        ...

    def database(self) -> DatabaseInfo:
        """Name, owner, encoding, size and pg_dump version (tables left empty)."""
        ...

    def count_rows(self) -> tuple[TableRows, ...]:
        """Exact row counts of every ordinary table, read in this snapshot."""
        ...

    def dump(self, ctx: OpContext) -> AbstractContextManager[DumpStream]:
        """A custom-format dump taken at this snapshot, as a stream.

        Leaving the context checks the dump tool's outcome and raises
        :class:`~gocdbackup.errors.ToolFailed` if it did not succeed."""
        ...


class Postgres(Protocol):
    """A PostgreSQL server reachable with one set of connection parameters, seen as generic
    PostgreSQL: what backing up and restoring any database takes (snapshot, dump, create, load,
    check, swap, drop).  Nothing here knows gocdnext's tables: see :class:`GocdnextData`."""

    @property
    def name(self) -> str:
        """The database the connection parameters name."""
        ...

    def source_id(self) -> str:
        """Which server and database this is, safe to show (no password)."""
        ...

    def snapshot(self, ctx: OpContext) -> AbstractContextManager[Snapshot]:
        """Export a snapshot of :attr:`name` and hold it open until the context is left (which
        also cancels a query still running in it)."""
        ...

    def exists(self, name: str) -> bool: ...

    def role_exists(self, role: str) -> bool: ...

    def create(self, name: str, *, owner: str | None, encoding: str) -> None:
        """``CREATE DATABASE name`` from ``template0`` with ``encoding`` (and ``owner``)."""
        ...

    def load(
        self,
        chunks: Iterable[bytes],
        name: str,
        *,
        role: str | None,
        min_tool_version: str,
        ctx: OpContext,
    ) -> None:
        """``pg_restore --no-owner --no-acl`` of the dump ``chunks`` make up into database
        ``name``, streamed.  If ``chunks`` raises, the restore is stopped and the error
        propagates (the caller drops ``name``)."""
        ...

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
        """``pg_restore --section=SECTION`` of the archive ``parts`` make (a table of contents
        and the data blocks it needs, if any) into database ``name``; with ``objects``
        (schema, names) only those (``-n``/``-t``).  ``jobs`` above 1 runs ``pg_restore -j``
        where the tool can read a file (``parts`` then hold no rows: only a table of
        contents is ever written to a file)."""
        ...

    def count_rows(self, name: str, schema: str, table: str) -> int: ...

    def empty_table(self, name: str, schema: str, table: str) -> None:
        """``TRUNCATE`` one table of database ``name`` (a staging copy being loaded)."""
        ...

    def inspect(
        self, name: str, counted: Mapping[str, int] | None = None
    ) -> tuple[int | None, tuple[TableRows, ...]]:
        """(schema migration version, exact row counts) of database ``name``, read in one
        transaction; the version as :meth:`Snapshot.point` reports it.  Tables in
        ``counted`` (``schema.table`` → rows, counted when they were loaded) are not counted
        again."""
        ...

    def swap(self, staging: str, target: str) -> None:
        """Make ``staging`` become ``target``: ends sessions on ``target``, drops it if present,
        renames ``staging``."""
        ...

    def drop(self, name: str) -> None:
        """Drop ``name`` if it exists (ending its sessions)."""
        ...


class BaseStream(DumpStream, Protocol):
    tool_version: str  # of the tool writing the physical base backup


class PhysicalSource(Protocol):
    """The server a physical base backup is taken of (every database of it)."""

    @property
    def name(self) -> str: ...  # the database whose schema version the backup records

    def base_backup(self, incremental: bytes | None = None) -> AbstractContextManager[BaseStream]:
        """A tar of the data directory with the WAL it needs and, last, its manifest (only
        what changed since the backup whose manifest is ``incremental``, if given); the exit
        of the tool is checked when the context is left after reading to the end."""
        ...

    def physical_facts(
        self, *, end_lsn: str, timeline: int, tool_version: str
    ) -> tuple[ConsistencyPoint, DatabaseInfo]:
        """The backup's consistency point (it is consistent at ``end_lsn``) and the facts of
        the database :attr:`name` names, read now."""
        ...


class GocdnextData(Protocol):
    """gocdnext's own rows in one database: the rows that reference artefact-store objects
    (``artifacts``, ``caches``, ``job_runs.logs_archive_uri``) and the artefact store's
    setting.  What a backup of the artefacts, an orphan scan, a cleanup, a recovery and the
    store's discovery read or change."""

    @property
    def name(self) -> str:
        """The database the rows are read from."""
        ...

    def source_id(self) -> str:
        """Which server and database this is, safe to show (no password): what an orphan
        report records as its source, to refuse it against another database."""
        ...

    def referenced_objects(self, snapshot_id: str) -> list[ObjectRef]:
        """Every artefact-store object a row references in the exported snapshot
        ``snapshot_id`` (see :class:`Snapshot`), sorted by key; empty for a database without
        gocdnext's tables.  Read on a connection of its own, in a ``REPEATABLE READ``
        transaction that imports the snapshot (``SET TRANSACTION SNAPSHOT``): the snapshot
        must still be held open by whoever exported it while this runs."""
        ...

    def object_rows(self, start_after: str = "") -> Iterator[RowRef]:
        """Every row that references an artefact-store object now (``artifacts``, ``caches``,
        ``job_runs.logs_archive_uri``), in ascending key order (byte order, as
        :meth:`ObjectStore.scan`), keys after ``start_after`` only; read in one REPEATABLE
        READ transaction through a server-side cursor (memory stays bounded).  A database
        without gocdnext's tables is refused (:class:`~gocdbackup.errors.ConfigError`)."""
        ...

    def object_rows_now(self, keys: Iterable[str]) -> dict[str, str]:
        """For each key, the status of the row referencing it *now* (outside any snapshot);
        keys no row references any more are absent."""
        ...

    def retire_rows(self, rows: Iterable[RowRef]) -> int:
        """Retire rows whose object is gone, the way gocdnext's own sweeper expects: an
        artefact goes to ``status='deleting'`` with ``deleted_at``/``expires_at`` now (the
        sweeper then deletes it), a cache row is deleted (caches have no deleting state: a
        miss is harmless), a job's ``logs_archive_uri``/``logs_archived_at`` are cleared.
        Only rows still as ``rows`` describe them (same id, key and status) are changed, all
        in one transaction; the number changed."""
        ...

    def storage_setting(self) -> tuple[dict[str, Any], bytes | None] | None:
        """gocdnext's ``platform_settings['artifacts.storage']``: (value, encrypted
        credentials), or None where there is no such row."""
        ...

    def encrypted_columns_present(self, columns: Sequence[EncryptedColumn]) -> list[str]:
        """The names of ``columns`` this database has (an older gocdnext lacks some)."""
        ...

    def sealed_batches(
        self, columns: Sequence[EncryptedColumn], *, keys: bool = True
    ) -> Iterator[SealedBatch]:
        """Every value of ``columns`` (present ones only, column after column, rows in no set
        order), a batch at a time: NULLs and external secrets as ``None`` blobs; a map column
        (runner profiles) as one value per entry, its hex decoded (an entry that is not hex
        comes as an unopenable blob).  Without ``keys``, a plain column's batches carry the
        blobs alone (faster; :meth:`rows_holding` names the rows of the few that matter).
        Read in one REPEATABLE READ snapshot, streamed: memory stays bounded by a batch."""
        ...

    def rows_holding(
        self, column: EncryptedColumn, blobs: Sequence[bytes]
    ) -> dict[bytes, list[str]]:
        """For each of ``blobs`` (values of ``column``, a plain one), the keys of the rows
        holding it now (none: changed since it was read)."""
        ...

    def sealed_values(self, columns: Sequence[EncryptedColumn]) -> Iterator[SealedValue]:
        """The values of :meth:`sealed_batches`, one at a time."""
        ...

    def reseal(self, changes: Sequence[Reseal]) -> int:
        """In one transaction, replace each value by its new blob where the row still holds
        the old one (a map entry: just that entry); how many were replaced."""
        ...

    def newest_run(self, snapshot_id: str) -> RunMark | None:
        """gocdnext's newest run in the snapshot ``snapshot_id`` (held open), or None (no run,
        or not a gocdnext database)."""
        ...

    def project_slugs(self) -> list[str]:
        """The slug of every project, sorted (what the Kubernetes secrets backend names its
        Secrets by)."""
        ...


class SecretStore(Protocol):
    """The Secrets of one Kubernetes namespace (used by: the Kubernetes secrets backend's
    backup, check and restore, and reading the application key from its Secret)."""

    @property
    def namespace(self) -> str: ...

    def list_secrets(self) -> list[KubeSecret]:
        """Every Secret of the namespace, by name (listed in pages)."""
        ...

    def read_secret(self, name: str) -> KubeSecret | None:
        """The Secret ``name``, or None if there is none."""
        ...

    def write_secret(self, secret: KubeSecret) -> str:
        """Create ``secret``, or replace the one of that name: ``created`` or ``replaced``."""
        ...


class DrillData(Protocol):
    """A restored copy of gocdnext's database, as a restore drill questions it."""

    def goose_versions(self) -> list[int]:
        """Every applied goose version, ascending."""
        ...

    def broken_foreign_keys(self) -> tuple[int, list[tuple[str, int]]]:
        """(foreign keys checked, each one that does not hold with its violating row count),
        validated row by row."""
        ...

    def run_logs(self, run_id: str | None = None) -> RunLogs | None:
        """The newest finished job with logs (of ``run_id``): its lines or its archive's key."""
        ...

    def newest_run(self) -> RunMark | None:
        """The newest run of the restored copy."""
        ...

    def dashboard(self) -> tuple[int, float]:
        """(rows, seconds) of what the dashboard's main views read: every project's pipelines
        with their latest run and its stages' and jobs' statuses."""
        ...


__all__ = [
    "BaseStream",
    "DrillData",
    "DumpStream",
    "GocdnextData",
    "ObjectInfo",
    "ObjectListing",
    "ObjectStore",
    "PhysicalSource",
    "Postgres",
    "SecretStore",
    "Snapshot",
    "read_each",
]
