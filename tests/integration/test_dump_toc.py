"""Every dump's table of contents is read back with ``pg_restore --list`` before its backup is
committed: a damaged one is refused (nothing listed), a good one passes."""

from __future__ import annotations

import os
import subprocess

import pytest

from gocdbackup.drivers.postgres import PostgresServer
from gocdbackup.errors import IntegrityError
from gocdbackup.testing import LocalPostgres
from tests.conftest import PG_PASSWORD

pytestmark = pytest.mark.integration


def dump(pg: LocalPostgres, dsn: str) -> bytes:
    env = {**os.environ, "PGPASSWORD": PG_PASSWORD}
    args = [str(pg.bindir / "pg_dump"), "--format=custom", "--compress=0", f"--dbname={dsn}"]
    return subprocess.run(args, capture_output=True, env=env, check=True).stdout


def test_the_table_of_contents_must_read(gocdnext_db: str, pg: LocalPostgres) -> None:
    server = PostgresServer(gocdnext_db)
    archive = dump(pg, gocdnext_db)
    server.check_toc(archive, 18)  # the whole archive
    server.check_toc(archive[: len(archive) // 2 + 200_000], 18)  # the TOC is at the head
    with pytest.raises(IntegrityError, match="unreadable table of contents"):
        server.check_toc(archive[:20_000], 18)  # cut inside the TOC
    damaged = bytearray(archive)
    damaged[5:8] = b"\xff\xff\xff"  # the format version
    with pytest.raises(IntegrityError, match="nothing was committed"):
        server.check_toc(bytes(damaged), 18)
