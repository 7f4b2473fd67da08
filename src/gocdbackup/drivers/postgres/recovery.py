"""Point-in-time recovery of a data directory laid down from a base backup: the server is
started on it (as an unprivileged user when we are root, as the embedded server is) with a
``restore_command`` that fetches WAL from the repository and a recovery target, waited for
until it promotes, read (where recovery stopped, the schema version, the row counts), and
stopped cleanly, so that the data directory is left ready to start.

The recovery settings are given on the server's command line, not written into its
configuration: nothing of them (nor the repository's passphrase, which reaches
``restore_command`` through the server's environment only) stays in the data directory.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from attrs import frozen
from psycopg.conninfo import make_conninfo

from gocdbackup.drivers.local_server import _system_user, _traversable, free_port
from gocdbackup.drivers.postgres.tools import run_checked
from gocdbackup.errors import PostgresError, PreconditionFailed
from gocdbackup.model.wal import lsn_segment

_POLL_SECONDS = 0.2
#: the server's log of a recovery that failed, kept in the data directory
RECOVERY_LOG = "gocdbackup-recovery.log"


@frozen(kw_only=True)
class Recovered:
    """Where recovery stopped, read from the promoted server."""

    last_transaction_at: datetime | None
    lsn: str
    timeline: int
    goose_version: int | None
    tables: tuple[tuple[str, int], ...]
    seconds: float


class DirectoryWriter:
    """A :class:`~gocdbackup.model.base_backup.TarCheck` sink that writes a base backup's
    members into ``pgdata`` (directories, files, the manifest; never outside it)."""

    def __init__(self, pgdata: Path) -> None:
        self.root = pgdata.resolve()
        self._out: Any = None

    def __call__(self, name: str, kind: str, data: bytes) -> None:
        if kind == "start":
            path = (self.root / name).resolve()
            if path != self.root and self.root not in path.parents:
                raise PreconditionFailed(
                    f"the base backup holds a path outside its directory: {name}"
                )
            member_type = data[156:157]
            if member_type == b"5":
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
            elif member_type in (b"0", b"\0"):
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._out = path.open("wb")
            else:
                raise PreconditionFailed(
                    f"the base backup holds {name}, of a kind this restore does not lay down "
                    "(a tablespace link?)"
                )
        elif kind == "data" and self._out is not None:
            self._out.write(data)
        elif kind == "end" and self._out is not None:
            self._out.close()
            self._out = None

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def verify_data_directory(bindir: Path, pgdata: Path) -> None:
    """``pg_verifybackup`` of a base backup laid down as a plain data directory (its files
    against ``backup_manifest``, and the WAL the backup needs)."""
    run_checked([str(bindir / "pg_verifybackup"), "--quiet", str(pgdata)], tool="pg_verifybackup")


def combine_backups(bindir: Path, parts: list[Path], output: Path) -> None:
    """``pg_combinebackup`` of a full base backup and the incrementals built on it (each laid
    down as a plain directory, the full one first) into the empty directory ``output``."""
    run_checked(
        [str(bindir / "pg_combinebackup"), *map(str, parts), "--output", str(output)],
        tool="pg_combinebackup",
    )


def recover(
    bindir: Path,
    pgdata: Path,
    *,
    restore_command: str,
    target: dict[str, str],
    env: dict[str, str],
    database: str,
    inspect: Callable[[str], tuple[int | None, tuple[tuple[str, int], ...]]],
    then: Callable[[str], None] | None = None,
    reach_segment: int | None = None,
    user_name: str = "postgres",
    timeout: float = 600.0,
) -> Recovered:
    """Start the server on ``pgdata`` to recover to ``target`` (``recovery_target_time`` or
    ``_lsn``), wait for promotion, read it, stop it (``then(dsn)`` runs before it stops: a
    dump of the recovered database, say).  With ``reach_segment`` (recovery to the archive's
    end), replay must have reached that segment: PostgreSQL takes any failing
    ``restore_command`` for the archive's end and promotes, so a recovery that stopped short
    is refused here.  ``inspect(dsn)`` reads the schema
    version and the row counts of ``database``."""
    user = _system_user()
    sockets = Path(tempfile.mkdtemp(prefix="gocdbackup-recovery-"))
    log_file = sockets / "server.log"
    started = time.monotonic()
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            subprocess.run(
                ["chown", "-R", f"{entry.pw_uid}:{entry.pw_gid}", str(pgdata)], check=True
            )
            os.chown(sockets, entry.pw_uid, entry.pw_gid)
            _traversable(pgdata)
            _traversable(sockets)
        pgdata.chmod(0o700)
        (pgdata / "recovery.signal").touch()
        if user is not None:
            os.chown(pgdata / "recovery.signal", entry.pw_uid, entry.pw_gid)
        port = free_port()
        hba = sockets / "pg_hba.conf"  # local connections only, trusted, while recovering
        hba.write_text("local all all trust\n")
        hba.chmod(0o644)
        settings = {
            "listen_addresses": "",
            "port": str(port),
            "unix_socket_directories": str(sockets),
            "hba_file": str(hba),
            "archive_mode": "off",
            "restore_command": restore_command,
            "recovery_target_action": "promote",
            **target,
        }
        options = " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in settings.items())
        try:
            _pg_ctl(
                bindir, user, env, "-D", str(pgdata), "-l", str(log_file), "-o", options, "start"
            )
        except PostgresError:
            raise PreconditionFailed(
                f"recovery failed: {_fatal(log_file) or 'the server did not start'}; the data "
                f"directory was left as it is (the server's log: {pgdata / RECOVERY_LOG})"
            ) from None
        dsn = make_conninfo(host=str(sockets), port=str(port), user=user_name, dbname=database)
        try:
            _wait_for_promotion(dsn, pgdata, log_file, timeout)
            with psycopg.connect(dsn) as conn:
                row = conn.execute(
                    "SELECT pg_last_xact_replay_timestamp(), pg_current_wal_lsn()::text,"
                    " ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int,"
                    " pg_last_wal_replay_lsn()::text"
                ).fetchone()
            assert row is not None
            if reach_segment is not None and lsn_segment(str(row[3])) < reach_segment:
                raise PreconditionFailed(
                    f"recovery stopped at {row[3]}, before the end of the WAL archive (segment "
                    f"{reach_segment} and later are archived): fetching a segment failed; the "
                    f"data directory was left as it is (the server's log: {pgdata / RECOVERY_LOG})"
                )
            goose, tables = inspect(dsn)
            if then is not None:
                then(dsn)
        finally:
            _pg_ctl(bindir, user, env, "-D", str(pgdata), "-m", "fast", "-w", "stop")
        at = row[0]
        return Recovered(
            last_transaction_at=None if at is None else at.astimezone(UTC),
            lsn=str(row[1]),
            timeline=int(row[2]),
            goose_version=goose,
            tables=tables,
            seconds=time.monotonic() - started,
        )
    except PreconditionFailed:
        kept = pgdata / RECOVERY_LOG
        shutil.copyfile(log_file, kept)
        raise
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def _pg_ctl(bindir: Path, user: str | None, env: dict[str, str], *args: str) -> None:
    kw: dict[str, Any] = {}
    if user is not None:
        kw.update(user=user, group=pwd.getpwnam(user).pw_gid, extra_groups=[])
    proc = subprocess.run(
        [str(bindir / "pg_ctl"), "-w", "-t", "60", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
        **kw,
    )
    if proc.returncode != 0 and "stop" not in args:
        raise PostgresError(f"pg_ctl {args[-1]} failed: {proc.stderr.strip()[-300:]}")


def _wait_for_promotion(dsn: str, pgdata: Path, log_file: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(dsn, connect_timeout=5) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if row is not None and not row[0]:
                return
        except psycopg.OperationalError:
            if not (pgdata / "postmaster.pid").exists():  # the server stopped
                raise PreconditionFailed(
                    f"recovery failed: {_fatal(log_file) or 'the server stopped'} (recovery "
                    "to a time stops at the first commit after it, which must be archived; "
                    "a missing segment shows in 'gocdbackup wal verify'); the data directory "
                    f"was left as it is (the server's log: {pgdata / RECOVERY_LOG})"
                ) from None
        time.sleep(_POLL_SECONDS)
    raise PreconditionFailed(f"recovery did not finish within {timeout:.0f} s")


def _fatal(log_file: Path) -> str | None:
    """The server log's last FATAL or PANIC message."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    fatal = [line for line in lines if "FATAL:" in line or "PANIC:" in line]
    if not fatal:
        return None
    return fatal[-1].split("FATAL:", 1)[-1].split("PANIC:", 1)[-1].strip()
