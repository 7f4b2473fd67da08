"""Every failure a user can hit: a typed error with a clear, secret-free message, nothing changed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psycopg
import pytest

from gocdbackup import GocdBackup
from gocdbackup.drivers.local_server import free_port
from gocdbackup.errors import (
    AuthenticationFailed,
    ConfirmationMismatch,
    DatabaseNotFound,
    DatabaseUnreachable,
    ToolTooOld,
)
from gocdbackup.testing import LocalPostgres
from tests.conftest import PG_PASSWORD, REPO_PASSWORD

pytestmark = pytest.mark.integration


@pytest.fixture
def gb(repo_url: str) -> GocdBackup:
    return GocdBackup.init(repo_url, password=REPO_PASSWORD, scrypt_n=2**12)


def test_unreachable_host(gb: GocdBackup) -> None:
    with pytest.raises(DatabaseUnreachable, match=r"cannot connect to PostgreSQL at 127\.0\.0\.1"):
        gb.backup(f"host=127.0.0.1 port={free_port()} dbname=gocdnext user=x connect_timeout=3")
    assert gb.list_backups() == []


def test_wrong_password_never_echoes_it(gb: GocdBackup, pg: LocalPostgres) -> None:
    dsn = pg.dsn("postgres", password="hunter2-not-the-password")
    with pytest.raises(AuthenticationFailed, match="rejected the credentials") as info:
        gb.backup(dsn)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(info.value)
    assert gb.list_backups() == []


def test_missing_database(gb: GocdBackup, pg: LocalPostgres) -> None:
    with pytest.raises(DatabaseNotFound, match="'no_such_db' does not exist"):
        gb.backup(pg.dsn("no_such_db"))


def _fake_tool_dir(tmp_path: Path, version: str) -> str:
    for name in ("pg_dump", "pg_restore"):
        script = tmp_path / name
        script.write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {version}'\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(tmp_path)


def test_pg_dump_too_old_is_refused(repo_url: str, gocdnext_db: str, tmp_path: Path) -> None:
    gb = GocdBackup.init(
        repo_url,
        password=REPO_PASSWORD,
        scrypt_n=2**12,
        pg_bindir=_fake_tool_dir(tmp_path, "12.22"),
    )
    with pytest.raises(ToolTooOld, match=r"need pg_dump of PostgreSQL 18 or newer \(found: 12\.22"):
        gb.backup(gocdnext_db)
    assert gb.list_backups() == []


@pytest.mark.skipif(
    not Path("/usr/lib/postgresql/15/bin/pg_dump").exists(), reason="no system PostgreSQL 15 tools"
)
def test_real_older_pg_dump_is_refused(repo_url: str, gocdnext_db: str) -> None:
    gb = GocdBackup.init(
        repo_url, password=REPO_PASSWORD, scrypt_n=2**12, pg_bindir="/usr/lib/postgresql/15/bin"
    )
    with pytest.raises(ToolTooOld, match="found: 15"):
        gb.backup(gocdnext_db)


def test_confirm_mismatch_changes_nothing(gb: GocdBackup, gocdnext_db: str) -> None:
    backup = gb.backup(gocdnext_db)
    with pytest.raises(ConfirmationMismatch):
        gb.restore(backup.id, gocdnext_db, confirm=backup.id[:-1], replace=True)


def test_password_from_env_and_file(
    repo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    GocdBackup.init(repo_url, password=REPO_PASSWORD, scrypt_n=2**12)
    secret = tmp_path / "pass"
    secret.write_text(REPO_PASSWORD + "\n")
    assert GocdBackup(repo_url, password_file=secret).list_backups() == []
    monkeypatch.setenv("GOCDBACKUP_PASSWORD", REPO_PASSWORD)
    assert GocdBackup(repo_url).list_backups() == []


def test_server_password_is_not_in_tool_command_lines(gb: GocdBackup, big_gocdnext_db: str) -> None:
    import psutil

    seen: list[str] = []

    def spy(event: object) -> None:
        for child in psutil.Process().children(recursive=True):
            try:
                seen.append(" ".join(child.cmdline()))
            except psutil.Error:
                continue

    GocdBackup(gb.url, password=REPO_PASSWORD, progress=spy).backup(big_gocdnext_db)
    assert any("pg_dump" in c for c in seen)
    assert not any(PG_PASSWORD in c for c in seen)
    assert os.environ.get("PGPASSWORD") is None  # never set in our own environment


def test_pg_environment_is_honoured(
    gb: GocdBackup, pg: LocalPostgres, gocdnext_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty DSN: host, port, user, password and database all come from PG* variables,
    for the snapshot connection and for pg_dump alike."""
    dbname = psycopg.conninfo.conninfo_to_dict(gocdnext_db)["dbname"]
    for var, value in {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg.port),
        "PGUSER": "postgres",
        "PGPASSWORD": PG_PASSWORD,
        "PGDATABASE": str(dbname),
    }.items():
        monkeypatch.setenv(var, value)
    backup = gb.backup("")
    assert backup.database.name == dbname
    assert backup.point.goose_version == 86
