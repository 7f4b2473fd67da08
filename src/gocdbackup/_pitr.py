"""Point in time from Python: physical base backups, and the WAL archive (what
``archive_command`` and ``restore_command`` run: ``gocdbackup wal push %p`` / ``wal fetch %f
%p``) with its check for gaps."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import attrs

from gocdbackup._facade import GocdBackup
from gocdbackup._wal_hooks import fetch_file, push_file
from gocdbackup._wiring import __version__, postgres_server
from gocdbackup.drivers.local_server import _traversable
from gocdbackup.drivers.postgres import PostgresServer
from gocdbackup.drivers.postgres.physical import PgPhysical
from gocdbackup.drivers.postgres.recovery import (
    DirectoryWriter,
    combine_backups,
    recover,
    verify_data_directory,
)
from gocdbackup.drivers.postgres.tools import embedded_bindir, find_tool
from gocdbackup.errors import (
    ConfigError,
    ConfirmationMismatch,
    IntegrityError,
    PreconditionFailed,
    TargetExists,
)
from gocdbackup.model.backup import BackupSet
from gocdbackup.model.base_backup import TarCheck
from gocdbackup.model.pitr import PhysicalRestoreReport, RecoveryTarget, check_target
from gocdbackup.model.wal import WalReport, segment_number
from gocdbackup.ops import wal
from gocdbackup.ops.physical import BASE_KIND, take_physical_backup
from gocdbackup.repository import read_stream


def physical_backup(
    gb: GocdBackup, db: str | PostgresServer, *, label: str = "", incremental: bool = False
) -> BackupSet:
    """A physical base backup of the whole server ``db`` names (pg_basebackup, with the WAL
    it needs), checked against its manifest before it is committed.  With the WAL archive
    (``archive_command``: ``gocdbackup wal push``), it can be recovered to any later time.
    ``incremental`` (PostgreSQL 17+, ``summarize_wal = on``): only what changed since the
    newest physical backup in the repository, which it builds on (``BackupSet.parent``)."""
    server = gb.database(db)
    if not isinstance(server, PostgresServer):
        raise ConfigError("a physical backup needs a PostgreSQL server (a DSN); nothing was done")
    parent = None
    if incremental:
        physical = [b for b in gb.list_backups() if b.method == "physical"]
        if not physical:
            raise PreconditionFailed(
                "an incremental backup builds on a physical one, and the repository holds "
                "none: take a full one first (backup --physical); nothing was backed up"
            )
        parent = max(physical, key=lambda b: b.created_at)
    return take_physical_backup(
        gb.repository,
        PgPhysical(server),
        ctx=gb.context(),
        label=label,
        tool_version=__version__(),
        parent=parent,
    )


def wal_push(gb: GocdBackup, path: str, *, name: str | None = None) -> bool:
    """Archive the WAL file at ``path`` (as ``name``, default: its file name); True if stored
    now, False if it was archived already with the same content
    (:class:`~gocdbackup.errors.WalConflict` if with other content)."""
    return push_file(gb.repository, path, ctx=gb.context(), name=name)


def wal_fetch(gb: GocdBackup, name: str, dest: str) -> int:
    """Write archived WAL file ``name`` to ``dest``; its size
    (:class:`~gocdbackup.errors.WalMissing` if it is not archived)."""
    return fetch_file(gb.repository, name, dest, ctx=gb.context())


def wal_verify(gb: GocdBackup) -> WalReport:
    """Each timeline's run of archived segments, the gaps in them, and damaged entries."""
    return wal.verify_wal(gb.repository, ctx=gb.context())


def restore_physical(
    gb: GocdBackup,
    backup_id: str,
    pgdata: str | None = None,
    *,
    confirm: str,
    target_time: datetime | None = None,
    target_lsn: str | None = None,
    bindir: str | None = None,
    db: str | None = None,
    replace: bool = False,
) -> PhysicalRestoreReport:
    """Lay the physical backup ``backup_id`` down into the new data directory ``pgdata``
    (checked against its manifest on the way, then by ``pg_verifybackup``), recover it to
    ``target_time`` or ``target_lsn`` (neither: the end of the WAL archive) with WAL fetched
    from the repository, wait for it to promote, read where recovery stopped, the goose
    version and every table's row count, and stop it: ``pgdata`` is left ready to start.

    ``bindir`` holds the server binaries of the backup's major version (default: the embedded
    ones).  The server runs as an unprivileged user when we are root; it reads the repository
    through ``restore_command`` (``gocdbackup wal fetch``), with the passphrase in its
    environment only.

    Forensics (``db=DSN``): ``pgdata`` is a throwaway directory (default: a temporary one);
    once recovered, the database is dumped from it into the repository as a logical backup
    (labelled with the base backup and the target), restored into the database ``db`` names
    with every check of a logical restore (a staging database, goose and row counts, an
    existing one replaced only with ``replace=True``), and the throwaway server and directory
    are removed: "gocdnext as it was at 14:03" in a scratch database."""
    target = RecoveryTarget(time=target_time, lsn=target_lsn)
    if db is not None:
        return _forensics(
            gb, backup_id, db, confirm=confirm, replace=replace, target=target, bindir=bindir
        )
    if pgdata is None:
        raise ConfigError("give pgdata=DIR (a new data directory) or db=DSN; nothing was done")
    return _recover(gb, backup_id, pgdata, confirm=confirm, target=target, bindir=bindir)


def check_physical_restore(
    gb: GocdBackup, backup_id: str, *, target_time: datetime | None, bindir: str | None
) -> None:
    """What :func:`restore_physical` checks before it touches anything (a physical backup,
    a target it can reach, server binaries of its major version), for callers that must
    know before doing other work first."""
    backup = gb.get_backup(backup_id)
    if backup.method != "physical":
        raise PreconditionFailed(f"backup {backup_id} is not a physical backup")
    check_target(
        RecoveryTarget(time=target_time),
        backup_id=backup_id,
        consistent_at=backup.created_at,
        now=gb.context().now(),
    )
    _server_bindir(bindir, backup)


def _forensics(
    gb: GocdBackup,
    backup_id: str,
    db: str,
    *,
    confirm: str,
    replace: bool,
    target: RecoveryTarget,
    bindir: str | None,
) -> PhysicalRestoreReport:
    database = gb.database(db)
    if database.exists(database.name) and not replace:
        raise TargetExists(
            f"database {database.name!r} already exists; pass replace=True to overwrite it"
        )
    made: list[BackupSet] = []

    def dump(dsn: str) -> None:
        label = f"recovered from {backup_id} to {target.describe()}"
        made.append(gb.backup(dsn, label=label))

    scratch = tempfile.mkdtemp(prefix="gocdbackup-forensics-")
    try:
        report = _recover(
            gb, backup_id, scratch, confirm=confirm, target=target, bindir=bindir, then=dump
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logical = made[0]
    restored = gb.restore(logical.id, database, confirm=logical.id, replace=replace)
    return attrs.evolve(
        report,
        pgdata="",
        database=restored.database,
        logical_backup=logical.id,
        seconds=report.seconds + restored.seconds,
    )


def _recover(
    gb: GocdBackup,
    backup_id: str,
    pgdata: str,
    *,
    confirm: str,
    target: RecoveryTarget,
    bindir: str | None,
    then: Callable[[str], None] | None = None,
) -> PhysicalRestoreReport:
    if confirm != backup_id:
        raise ConfirmationMismatch(
            f"restoring needs confirm={backup_id!r} (got {confirm!r}); nothing was changed"
        )
    backup = gb.get_backup(backup_id)
    if backup.method != "physical":
        raise PreconditionFailed(
            f"backup {backup_id} is a logical backup: restore it into a database (db=DSN), "
            "not into a data directory; nothing was changed"
        )
    check_target(
        target, backup_id=backup_id, consistent_at=backup.created_at, now=gb.context().now()
    )
    directory = Path(pgdata)
    if directory.exists() and any(directory.iterdir()):
        raise TargetExists(f"{pgdata} exists and is not empty; nothing was changed")
    tools = Path(_server_bindir(bindir, backup))
    started = gb.context().now()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        files = _lay_down_chain(gb, backup, directory, tools)
        verify_data_directory(tools, directory)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    if os.geteuid() == 0:  # the server's user runs restore_command with this interpreter
        _traversable(Path(sys.executable).resolve())
    command = " ".join(
        shlex.quote(part)
        for part in (sys.executable, "-m", "gocdbackup.cli", "wal", "fetch", "%f", "%p")
    )
    command += f" --repo {shlex.quote(gb.url)}"
    recovered = recover(
        tools,
        directory,
        restore_command=command,
        target=target.settings(),
        env={"GOCDBACKUP_PASSWORD": gb._password.decode()},
        database=backup.database.name,
        user_name=backup.database.owner,
        inspect=_inspector(backup.database.name),
        then=then,
        reach_segment=None if target.settings() else _archive_end(gb, backup),
    )
    return PhysicalRestoreReport(
        backup_id=backup_id,
        pgdata=str(directory),
        target=target.describe(),
        recovered_to=recovered.last_transaction_at,
        lsn=recovered.lsn,
        timeline=recovered.timeline,
        goose_version=recovered.goose_version,
        tables_checked=len(recovered.tables),
        rows_checked=sum(rows for _, rows in recovered.tables),
        files=files,
        seconds=(gb.context().now() - started).total_seconds(),
    )


def _archive_end(gb: GocdBackup, backup: BackupSet) -> int | None:
    """The newest whole segment archived on the backup's timeline (None: none)."""
    numbers = [
        segment_number(name)[1]
        for name in gb.repository.record_ids(wal.WAL_KIND)
        if len(name) == 24 and segment_number(name)[0] == backup.point.timeline
    ]
    return max(numbers, default=None)


def _server_bindir(bindir: str | None, backup: BackupSet) -> str:
    major = int(backup.point.server_version.split(".")[0])
    chosen = bindir or embedded_bindir()
    if chosen is None:
        raise ConfigError("no PostgreSQL server binaries: pass bindir=DIR; nothing was changed")
    tool = find_tool("postgres", major, prefer_major=major, bindir=chosen)
    if tool.major != major:
        raise PreconditionFailed(
            f"backup {backup.id} is of PostgreSQL {major}; the binaries in {chosen} are "
            f"{tool.major}: pass the directory of PostgreSQL {major}'s server; nothing was changed"
        )
    return str(Path(tool.path).parent)


def _lay_down(gb: GocdBackup, backup: BackupSet, directory: Path) -> int:
    writer = DirectoryWriter(directory)
    check = TarCheck(sink=writer)
    component = backup.component(BASE_KIND)
    try:
        for data in read_stream(gb.repository, component.chunks, gb.context(), phase="restore"):
            check.feed(data)
    finally:
        writer.close()
    result = check.finish()
    if not result.ok:
        raise IntegrityError(
            f"backup {backup.id} does not match its manifest; nothing was kept",
            problems=list(result.problems),
        )
    return result.files


def _chain(gb: GocdBackup, backup: BackupSet) -> list[BackupSet]:
    """``backup`` and the backups it builds on, the full one first."""
    chain = [backup]
    while chain[-1].parent is not None:
        parent = chain[-1].parent
        if parent not in {b.id for b in gb.list_backups()}:
            raise IntegrityError(
                f"backup {chain[-1].id} builds on {parent}, which is not in the repository; "
                "nothing was changed"
            )
        chain.append(gb.get_backup(parent))
    return chain[::-1]


def _lay_down_chain(gb: GocdBackup, backup: BackupSet, directory: Path, tools: Path) -> int:
    """Lay ``backup`` down into ``directory``; an incremental one with the backups it builds
    on, each into a directory of its own beside it, combined by pg_combinebackup."""
    chain = _chain(gb, backup)
    if len(chain) == 1:
        return _lay_down(gb, backup, directory)
    parts = Path(tempfile.mkdtemp(prefix=".gocdbackup-parts-", dir=directory.parent))
    try:
        laid = []
        for number, part in enumerate(chain):
            where = parts / str(number)
            where.mkdir(mode=0o700)
            files = _lay_down(gb, part, where)
            laid.append(where)
        combine_backups(tools, laid, directory)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return files


def _inspector(database: str) -> Callable[[str], tuple[int | None, tuple[tuple[str, int], ...]]]:
    def inspect(dsn: str) -> tuple[int | None, tuple[tuple[str, int], ...]]:
        goose, tables = postgres_server(dsn).inspect(database)
        return goose, tuple((t.name, t.rows) for t in tables)

    return inspect
