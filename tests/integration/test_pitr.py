"""Point-in-time recovery on a real PostgreSQL: a physical base backup (pg_basebackup, checked
against its manifest), WAL archived by ``archive_command`` running our CLI, and a restore into
a new data directory recovered with ``restore_command`` running our CLI to a time between two
committed batches: the first batch is there, the second is not."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from gocdbackup import physical_backup, restore_physical, wal_verify
from gocdbackup.errors import ConfirmationMismatch, PreconditionFailed, TargetExists
from gocdbackup.model.backup import BackupSet
from gocdbackup.model.retention import RetentionPolicy
from gocdbackup.model.wal import lsn_segment, segment_number
from gocdbackup.ops.physical import BASE_KIND
from gocdbackup.ops.wal import WAL_KIND, prune_wal
from tests.integration.archiving import Archive, archiving_server

pytestmark = pytest.mark.integration


class History:
    def __init__(self, archive: Archive, backup: BackupSet, between: datetime) -> None:
        self.archive, self.backup, self.between = archive, backup, between


def _batch(archive: Archive, batch: int, rows: int = 1000) -> datetime:
    """Commit ``rows`` rows of ``batch``; the server's time just after the commit."""
    with psycopg.connect(archive.pg.dsn(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO batches SELECT %s, g FROM generate_series(1, %s) g", (batch, rows)
        )
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def history() -> Iterator[History]:
    with archiving_server(password="pitr-server-pw") as archive:
        gb = archive.gb()
        _batch(archive, 1)
        backup = physical_backup(gb, archive.pg.dsn())
        archive.share_repository()
        _batch(archive, 2)
        time.sleep(0.5)
        between = datetime.now(UTC)
        time.sleep(0.5)
        _batch(archive, 3)
        archive.switch(rows=1)
        yield History(archive, backup, between)


def test_a_physical_backup_is_checked_and_committed(history: History) -> None:
    backup = history.backup
    assert backup.method == "physical"
    assert backup.component(BASE_KIND).size_bytes > 0
    assert backup.point.timeline == 1
    assert backup.point.wal_lsn
    listed = [b.id for b in history.archive.gb().list_backups()]
    assert backup.id in listed


def test_recovery_to_a_time_between_two_batches(history: History, tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    report = restore_physical(
        history.archive.gb(),
        history.backup.id,
        str(pgdata),
        confirm=history.backup.id,
        target_time=history.between,
    )
    assert dict([("public.batches", report.rows_checked)]) == {"public.batches": 2000}
    assert report.recovered_to is not None
    assert report.recovered_to <= history.between
    assert report.timeline == 2  # promoted: a new timeline
    assert (pgdata / "PG_VERSION").exists()
    assert not (pgdata / "recovery.signal").exists()


def test_recovery_to_the_end_of_the_archive_has_every_batch(
    history: History, tmp_path: Path
) -> None:
    report = restore_physical(
        history.archive.gb(), history.backup.id, str(tmp_path / "d"), confirm=history.backup.id
    )
    assert report.rows_checked == 3001
    assert report.target == "the end of the WAL archive"


@pytest.mark.parametrize(
    ("when", "error", "message"),
    [
        (lambda b: b - timedelta(hours=1), PreconditionFailed, "before backup"),
        (lambda b: datetime.now(UTC) + timedelta(days=1), PreconditionFailed, "in the future"),
        (lambda b: b.replace(tzinfo=None), PreconditionFailed, "UTC offset"),
    ],
)
def test_targets_it_cannot_reach_are_refused(
    history: History, tmp_path: Path, when: object, error: type[Exception], message: str
) -> None:
    pgdata = tmp_path / "never"
    with pytest.raises(error, match=message):
        restore_physical(
            history.archive.gb(),
            history.backup.id,
            str(pgdata),
            confirm=history.backup.id,
            target_time=when(history.backup.created_at),  # type: ignore[operator]
        )
    assert not pgdata.exists()


def test_bad_input_changes_nothing(history: History, tmp_path: Path) -> None:
    gb = history.archive.gb()
    with pytest.raises(ConfirmationMismatch):
        restore_physical(gb, history.backup.id, str(tmp_path / "a"), confirm="other")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep").write_text("mine")
    with pytest.raises(TargetExists):
        restore_physical(gb, history.backup.id, str(taken), confirm=history.backup.id)
    assert (taken / "keep").read_text() == "mine"


def test_a_missing_wal_segment_fails_the_recovery(history: History, tmp_path: Path) -> None:
    repo = history.archive.gb().repository
    names = [n for n in repo.record_ids(WAL_KIND) if len(n) == 24]
    needed = names[-2]  # holds batch 3's commit, past the target below
    kept = repo.read_record(WAL_KIND, needed)
    assert kept is not None
    repo.delete_record(WAL_KIND, needed)
    try:
        with pytest.raises(PreconditionFailed, match="recovery failed"):
            restore_physical(
                history.archive.gb(),
                history.backup.id,
                str(tmp_path / "gap"),
                confirm=history.backup.id,
                target_time=datetime.now(UTC) - timedelta(seconds=1),
            )
    finally:
        repo.write_record(WAL_KIND, needed, kept)


def test_the_cli_takes_a_physical_backup_and_recovers_it_to_a_time(
    history: History, tmp_path: Path
) -> None:
    archive = history.archive
    made = archive.cli("--json", "backup", "--physical", "--db", archive.pg.dsn())
    assert made.returncode == 0, made.stderr
    backup_id = json.loads(made.stdout)["id"]
    archive.share_repository()
    _batch(archive, 4, rows=10)
    time.sleep(0.3)
    target = datetime.now(UTC)
    time.sleep(0.3)
    _batch(archive, 5, rows=10)  # recovery stops at the first commit after the target
    archive.switch(rows=1)
    archive.share_repository()
    pgdata = tmp_path / "cli"
    done = archive.cli(
        "restore", backup_id, "--pgdata", str(pgdata), "--confirm", backup_id,
        "--target-time", target.isoformat(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "recovered" in done.stdout
    assert f"pg_ctl -D {pgdata} start" in done.stdout
    bad = archive.cli(
        "restore", backup_id, "--pgdata", str(tmp_path / "x"), "--confirm", backup_id,
        "--target-time", "yesterday",
    )  # fmt: skip
    assert bad.returncode == 2
    assert "not an ISO 8601 time" in bad.stderr
    mixed = archive.cli("backup", "--physical", "--db", archive.pg.dsn(), "--artifacts", "s3://b")
    assert mixed.returncode == 2


def test_a_physical_backup_is_not_restored_into_a_database(history: History) -> None:
    gb = history.archive.gb()
    with pytest.raises(PreconditionFailed, match="--pgdata DIR"):
        gb.restore(history.backup.id, history.archive.pg.dsn("x"), confirm=history.backup.id)
    report = gb.verify(history.backup.id, read_data=100)
    assert report.ok, report.summary()


def test_forensics_recovers_into_a_database_through_a_throwaway_server(
    history: History,
) -> None:
    """ "Show me gocdnext as it was at T": recovered in a throwaway server, then restored into
    a database of the running server with a logical restore's checks."""
    archive = history.archive
    target = archive.pg.dsn("as_it_was")
    report = restore_physical(
        archive.gb(),
        history.backup.id,
        confirm=history.backup.id,
        target_time=history.between,
        db=target,
    )
    assert report.database == "as_it_was"
    assert report.logical_backup is not None
    with psycopg.connect(target) as conn:
        rows = conn.execute("SELECT batch, count(*) FROM batches GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [(1, 1000), (2, 1000)]
    kept = archive.gb().get_backup(report.logical_backup)
    assert kept.label == f"recovered from {history.backup.id} to {history.between.isoformat()}"
    assert not list(Path("/tmp").glob("gocdbackup-forensics-*"))
    with pytest.raises(TargetExists):
        restore_physical(archive.gb(), history.backup.id, confirm=history.backup.id, db=target)


def test_recovery_to_an_lsn(history: History) -> None:
    archive = history.archive
    with psycopg.connect(archive.pg.dsn(), autocommit=True) as conn:
        conn.execute("INSERT INTO batches SELECT 6, g FROM generate_series(1, 7) g")
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        conn.execute("INSERT INTO batches SELECT 7, g FROM generate_series(1, 9) g")
    archive.switch(rows=1)
    target = archive.pg.dsn("at_lsn")
    report = restore_physical(
        archive.gb(), history.backup.id, confirm=history.backup.id, target_lsn=row[0], db=target
    )
    assert report.target == f"LSN {row[0]}"
    with psycopg.connect(target) as conn:
        counts = dict(
            conn.execute("SELECT batch, count(*) FROM batches WHERE batch IN (6, 7) GROUP BY 1")
        )
    assert counts == {6: 7}


def test_retention_deletes_only_the_wal_no_physical_backup_needs(history: History) -> None:
    """Run last in this module: it deletes the segments before the oldest base backup."""
    gb = history.archive.gb()
    repo = gb.repository
    before = repo.record_ids(WAL_KIND)
    oldest = min(
        (b for b in gb.list_backups() if b.method == "physical"),
        key=lambda b: lsn_segment(b.point.wal_lsn),
    )
    keep_from = lsn_segment(oldest.point.wal_lsn)
    planned = prune_wal(repo, gb.list_backups(), ctx=gb.context(), dry_run=True)
    assert planned
    assert all(segment_number(n[:24])[1] < keep_from for n in planned)
    assert repo.record_ids(WAL_KIND) == before  # a dry run
    plan = gb.plan_retention(RetentionPolicy(keep_last=100))
    gb.apply_retention(plan, confirm=plan.id)  # forgets nothing; prunes the WAL
    after = repo.record_ids(WAL_KIND)
    assert sorted(set(before) - set(after)) == sorted(planned)
    assert wal_verify(gb).ok
    report = restore_physical(gb, oldest.id, confirm=oldest.id, db=history.archive.pg.dsn("after"))
    assert report.rows_checked > 0
