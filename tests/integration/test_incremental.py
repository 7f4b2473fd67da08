"""Incremental physical backups (PostgreSQL 18, ``summarize_wal = on``): each builds on the
newest physical backup, holds only what changed, and a restore lays the chain down and
combines it (pg_combinebackup) before recovering to a time; what cannot be done is refused."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest

from gocdbackup import physical_backup, restore_physical
from gocdbackup.errors import PreconditionFailed
from tests.integration.archiving import archiving_server

pytestmark = pytest.mark.integration


def _batch(dsn: str, batch: int, rows: int = 20_000) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO batches SELECT %s, g FROM generate_series(1, %s) g", (batch, rows)
        )


def test_a_chain_of_incrementals_recovers_to_a_time() -> None:
    with archiving_server(password="inc-pw", extra={"summarize_wal": "on"}) as archive:
        gb = archive.gb()
        dsn = archive.pg.dsn()
        with psycopg.connect(dsn, autocommit=True) as conn:  # bulk the full backup holds
            conn.execute(
                "CREATE TABLE bulk AS SELECT g, md5(g::text) m FROM generate_series(1, 200000) g"
            )
        _batch(dsn, 1)
        full = physical_backup(gb, dsn)
        _batch(dsn, 2)
        inc1 = physical_backup(gb, dsn, incremental=True)
        _batch(dsn, 3)
        inc2 = physical_backup(gb, dsn, incremental=True)
        assert (full.parent, inc1.parent, inc2.parent) == (None, full.id, inc1.id)
        assert inc2.size_bytes < full.size_bytes / 2  # only what changed
        assert gb.get_backup(inc2.id).summary()["parent"] == inc1.id
        time.sleep(0.5)
        between = datetime.now(UTC)
        time.sleep(0.5)
        _batch(dsn, 4)
        archive.switch(rows=1)
        archive.share_repository()
        report = restore_physical(
            gb, inc2.id, confirm=inc2.id, target_time=between, db=archive.pg.dsn("inc_at")
        )
        assert report.backup_id == inc2.id
        with psycopg.connect(archive.pg.dsn("inc_at")) as conn:
            rows = conn.execute(
                "SELECT batch, count(*) FROM batches GROUP BY 1 ORDER BY 1"
            ).fetchall()
            bulk = conn.execute("SELECT count(*) FROM bulk").fetchone()
        assert rows == [(1, 20_000), (2, 20_000), (3, 20_000)]
        assert bulk == (200_000,)


def test_incremental_backups_refuse_what_they_cannot_build_on() -> None:
    with archiving_server(password="inc-pw") as archive:  # summarize_wal off
        gb = archive.gb()
        with pytest.raises(PreconditionFailed, match="take a full one first"):
            physical_backup(gb, archive.pg.dsn(), incremental=True)
        physical_backup(gb, archive.pg.dsn())
        with pytest.raises(PreconditionFailed, match="summarize_wal = on"):
            physical_backup(gb, archive.pg.dsn(), incremental=True)
        assert len(gb.list_backups()) == 1  # nothing half-made was listed
        usage = archive.cli("backup", "--db", archive.pg.dsn(), "--incremental")
        assert usage.returncode == 2
        assert "add --physical" in usage.stderr
