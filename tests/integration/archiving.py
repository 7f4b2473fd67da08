"""A real PostgreSQL whose ``archive_command`` runs ``gocdbackup wal push`` into a repository
its own user can write (shared by the WAL archive and point-in-time tests)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from gocdbackup import GocdBackup
from gocdbackup.drivers.local_server import _system_user
from gocdbackup.testing import LocalPostgres
from tests.conftest import REPO_PASSWORD

CLI = [sys.executable, "-m", "gocdbackup.cli"]


def _reachable_by_others(path: Path) -> None:
    """o+x on every parent of ``path``: the server's own user runs our CLI (the interpreter
    may live under root's home)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


class Archive:
    def __init__(self, base: Path, pg: LocalPostgres) -> None:
        self.base, self.pg = base, pg
        self.repo_url = f"file://{base / 'repo'}"
        self.password_file = base / "password"

    def share_repository(self) -> None:
        """Give the server's user what this process wrote into the repository (blobs are
        written through private temporary files): the server reads them to recover."""
        user = _system_user()
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in [self.base, *self.base.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def gb(self) -> GocdBackup:
        return GocdBackup(self.repo_url, password=REPO_PASSWORD)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args, "--repo", self.repo_url, "--password-file", str(self.password_file)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def switch(self, rows: int = 100) -> str:
        """Write some rows, switch to a new segment, wait until the old one is archived."""
        with psycopg.connect(self.pg.dsn(), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO batches SELECT %s, g FROM generate_series(1, %s) g",
                (int(time.time() * 1000) % 100000, rows),
            )
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            assert row is not None
            name = str(row[0])
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                stat = conn.execute(
                    "SELECT last_archived_wal, failed_count, last_failed_wal FROM pg_stat_archiver"
                ).fetchone()
                assert stat is not None
                if stat[0] is not None and stat[0] >= name:
                    return name
                time.sleep(0.1)
        raise AssertionError(f"{name} was not archived: {stat}")


@contextmanager
def archiving_server(
    password: str | None = None, extra: dict[str, str] | None = None
) -> Iterator[Archive]:
    user = _system_user()
    base = Path(tempfile.mkdtemp(prefix="gocdbackup-wal-"))
    # what this process writes into the repository (a backup's blobs and their directories),
    # the server's user must be able to write beside: both share one file:// repository
    umask = os.umask(0)
    try:
        _reachable_by_others(Path(sys.executable).resolve())
        _reachable_by_others(base / "x")
        GocdBackup.init(f"file://{base / 'repo'}", password=REPO_PASSWORD, scrypt_n=2**12)
        (base / "password").write_text(REPO_PASSWORD)
        if user is not None:  # the server's user writes the repository
            entry = pwd.getpwnam(user)
            for path in [base, *base.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
        (base / "password").chmod(0o600)
        command = " ".join(
            [
                *CLI,
                *("wal", "push", "%p", "--repo", f"file://{base / 'repo'}"),
                *("--password-file", str(base / "password")),
            ]
        )
        settings = {
            "wal_level": "replica",
            "archive_mode": "on",
            "archive_command": command,
            **(extra or {}),
        }
        with LocalPostgres.start(settings=settings, password=password) as pg:
            with psycopg.connect(pg.dsn(), autocommit=True) as conn:
                conn.execute("CREATE TABLE batches (batch int, n int)")
            yield Archive(base, pg)
    finally:
        os.umask(umask)
        shutil.rmtree(base, ignore_errors=True)
