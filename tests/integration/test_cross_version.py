"""A server of one major version backed up and restored with the tools of another: gocdnext runs
PostgreSQL 16 while the embedded tools are 18. Uses the system PostgreSQL when present."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gocdbackup import GocdBackup
from gocdbackup.drivers.postgres.tools import embedded_bindir
from gocdbackup.testing import FixtureSpec, LocalPostgres, build_gocdnext_fixture
from tests.conftest import REPO_PASSWORD, SECRET_KEY

pytestmark = pytest.mark.integration

SYSTEM_BINDIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
OLDER = next((d for d in SYSTEM_BINDIRS if Path(d, "initdb").exists()), None)


@pytest.fixture(scope="module")
def old_pg() -> Iterator[LocalPostgres]:
    if OLDER is None:
        pytest.skip("no system PostgreSQL server (initdb) installed")
    with LocalPostgres.start(bindir=OLDER, password="old-server-pw") as server:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE gocdnext")
        build_gocdnext_fixture(server.dsn("gocdnext"), FixtureSpec(), secret_key=SECRET_KEY)
        yield server


def test_newer_tools_back_up_and_restore_an_older_server(
    old_pg: LocalPostgres, tmp_path: Path
) -> None:
    tools = embedded_bindir()
    assert tools is not None
    gb = GocdBackup.init(
        f"file://{tmp_path}/repo", password=REPO_PASSWORD, scrypt_n=2**12, pg_bindir=tools
    )
    backup = gb.backup(old_pg.dsn("gocdnext"))
    server_major = int(backup.point.server_version.split(".")[0])
    assert server_major < 18
    assert backup.database.pg_dump_version.startswith("18")
    report = gb.restore(backup.id, old_pg.dsn("gocdnext_restored"), confirm=backup.id)
    assert report.goose_version == 86
    assert report.rows_checked == sum(t.rows for t in backup.database.tables)


def test_default_discovery_prefers_the_servers_major(old_pg: LocalPostgres, tmp_path: Path) -> None:
    gb = GocdBackup.init(f"file://{tmp_path}/repo", password=REPO_PASSWORD, scrypt_n=2**12)
    backup = gb.backup(old_pg.dsn("gocdnext"))
    assert (
        backup.database.pg_dump_version.split(".")[0] == backup.point.server_version.split(".")[0]
    )
    gb.restore(backup.id, old_pg.dsn("gocdnext_again"), confirm=backup.id)
