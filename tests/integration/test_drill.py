"""Restore drills on real PostgreSQL: a good backup (database, artefacts, the key) passes every
check and leaves nothing behind; each purpose-built broken backup fails exactly the check that
names its fault, and says why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from gocdbackup import DrillFailed, GocdBackup, drill_history, run_drill
from gocdbackup.model.drill import DrillReport
from gocdbackup.model.manifest import Manifest
from gocdbackup.testing import CANARY_SECRET, LocalPostgres, fill_store
from tests.conftest import PG_PASSWORD, REPO_PASSWORD, SECRET_KEY

pytestmark = pytest.mark.integration


def admin(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


def backed_up(dsn: str, tmp_path: Path, *, before: str = "") -> tuple[GocdBackup, str]:
    """A repository holding one backup of ``dsn`` with its artefacts and the key, after
    ``before`` (SQL breaking something) ran."""
    store = (tmp_path / "store").as_uri()
    fill_store(dsn, store)
    if before:
        with admin(dsn) as conn:
            conn.execute(before)
    gb = GocdBackup.init(f"file://{tmp_path}/repo", password=REPO_PASSWORD)
    backup = gb.backup(dsn, artifacts=store, secret_key=SECRET_KEY.hex())
    return gb, backup.id


def verdicts(report: DrillReport) -> dict[str, bool | None]:
    return {c.name: c.ok for c in report.checks}


def scratch_databases(pg: LocalPostgres) -> list[str]:
    with admin(pg.dsn()) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'gocdbackup_drill_%'"
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_a_good_backup_passes_every_check_and_leaves_nothing(
    gocdnext_db: str, pg: LocalPostgres, tmp_path: Path
) -> None:
    gb, backup_id = backed_up(gocdnext_db, tmp_path)
    report = run_drill(gb, scratch_db=pg.dsn(), secret_key=SECRET_KEY.hex(), sample=1.0)
    assert report.ok, report.to_markdown()
    assert report.backup_id == backup_id
    assert verdicts(report) == {
        "goose": True,
        "rows": True,
        "dashboard": True,
        "recent_runs": True,
        "logs": True,
        "artifacts": True,
        "secrets": True,
    }
    assert [s.name for s in report.steps] == [
        "verify",
        "restore",
        "artifacts",
        "checks",
        "teardown",
    ]
    assert report.left_behind == ()
    assert scratch_databases(pg) == []
    shown = report.to_markdown() + repr(report) + report._repr_html_() + str(report.summary())
    assert CANARY_SECRET not in shown
    assert "foreign keys hold" in report.summary()["checks"]["rows"]["evidence"]


@pytest.mark.parametrize(
    ("before", "fault", "why"),
    [
        ("DELETE FROM goose_db_version WHERE version_id = 5", "goose", "versions missing: 5"),
        (
            "UPDATE artifacts SET content_sha256 = repeat('0', 64) WHERE id = "
            "(SELECT id FROM artifacts WHERE status = 'ready' ORDER BY storage_key LIMIT 1)",
            "artifacts",
            "differ from the database's record",
        ),
        (
            "ALTER TABLE job_runs DROP CONSTRAINT job_runs_stage_run_id_fkey;"
            " UPDATE job_runs SET stage_run_id = gen_random_uuid() WHERE id ="
            " (SELECT id FROM job_runs ORDER BY id LIMIT 1);"
            " ALTER TABLE job_runs ADD CONSTRAINT job_runs_stage_run_id_fkey FOREIGN KEY"
            " (stage_run_id) REFERENCES stage_runs(id) NOT VALID",
            "rows",
            "job_runs_stage_run_id_fkey (1 rows)",
        ),
    ],
)
def test_a_broken_backup_fails_exactly_its_check(
    gocdnext_db: str, pg: LocalPostgres, tmp_path: Path, before: str, fault: str, why: str
) -> None:
    gb, _ = backed_up(gocdnext_db, tmp_path, before=before)
    with pytest.raises(DrillFailed) as failed:
        run_drill(gb, scratch_db=pg.dsn(), secret_key=SECRET_KEY.hex(), sample=1.0)
    report = failed.value.report
    assert isinstance(report, DrillReport)
    assert report.failed == (fault,), report.to_markdown()
    assert why in {c.name: c.evidence for c in report.checks}[fault]
    assert scratch_databases(pg) == []


def test_a_missing_log_archive_and_a_wrong_key_fail_their_checks(
    gocdnext_db: str, pg: LocalPostgres, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    fill_store(gocdnext_db, store.as_uri())
    with admin(gocdnext_db) as conn:
        # a run whose newest finished job with logs (the one the drill reads) has an archive
        job, key = conn.execute(
            "SELECT id, uri FROM (SELECT DISTINCT ON (j.run_id) j.id::text AS id,"
            " j.logs_archive_uri AS uri, j.finished_at FROM job_runs j"
            " WHERE j.finished_at IS NOT NULL AND (j.logs_archive_uri IS NOT NULL"
            " OR EXISTS (SELECT FROM log_lines l WHERE l.job_run_id = j.id))"
            " ORDER BY j.run_id, j.finished_at DESC, j.id) newest"
            " WHERE uri IS NOT NULL ORDER BY finished_at DESC, id LIMIT 1"
        ).fetchone() or ("", "")
        run = conn.execute("SELECT run_id::text FROM job_runs WHERE id = %s", (job,)).fetchone()
    (store / key).unlink()  # the archive is gone before the backup: the backup cannot hold it
    gb = GocdBackup.init(f"file://{tmp_path}/repo", password=REPO_PASSWORD)
    gb.backup(gocdnext_db, artifacts=store.as_uri(), secret_key=SECRET_KEY.hex())
    assert run is not None
    report = run_drill(
        gb, scratch_db=pg.dsn(), run_id=str(run[0]), sample=0, raise_on_failure=False
    )
    assert report.failed == ("logs",)
    assert (
        f"the backup holds no copy of {key}" in {c.name: c.evidence for c in report.checks}["logs"]
    )
    wrong = run_drill(gb, scratch_db=pg.dsn(), secret_key="ab" * 32, raise_on_failure=False)
    assert "secrets" in wrong.failed
    assert "was taken with key" in {c.name: c.evidence for c in wrong.checks}["secrets"]
    assert scratch_databases(pg) == []
    assert conninfo_to_dict(gocdnext_db)["dbname"]  # the source is untouched


def test_the_cli_drills_and_exits_by_the_verdict(
    gocdnext_db: str, pg: LocalPostgres, tmp_path: Path
) -> None:
    _, backup_id = backed_up(gocdnext_db, tmp_path)
    key = tmp_path / "app.key"
    key.write_text(SECRET_KEY.hex() + "\n")
    repo = ["--repo", f"file://{tmp_path}/repo", "--scratch-db", pg.dsn()]
    good = cli("--json", "drill", *repo, "--secret-key-file", str(key), "--artifacts-sample", "50%")
    assert good.returncode == 0, good.stderr
    doc = json.loads(good.stdout)
    assert doc["ok"] is True
    assert doc["backup_id"] == backup_id
    assert set(doc["checks"]) == {
        "goose",
        "rows",
        "dashboard",
        "recent_runs",
        "logs",
        "artifacts",
        "secrets",
    }
    assert set(doc["timings"]) >= {"restore", "teardown"}
    human = cli("drill", backup_id, *repo)
    assert human.returncode == 0, human.stderr
    assert "passed" in human.stdout
    wrong = tmp_path / "wrong.key"
    wrong.write_text("cd" * 32)
    failed = cli("drill", *repo, "--secret-key-file", str(wrong))
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout
    bad = cli("drill", *repo, "--artifacts-sample", "lots")
    assert bad.returncode == 2
    assert scratch_databases(pg) == []


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD, "PGPASSWORD": PG_PASSWORD}
    env.pop("GOCDNEXT_SECRET_KEY", None)
    return subprocess.run(
        [str(Path(sys.executable).with_name("gocdbackup")), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_by_default_the_drill_brings_its_own_postgres_and_store(
    gocdnext_db: str, tmp_path: Path
) -> None:
    gb, _ = backed_up(gocdnext_db, tmp_path)
    before = {p.name for p in Path(tempfile.gettempdir()).glob("gocdbackup-drill-*")}
    report = run_drill(gb, sample=3)
    assert report.ok, report.to_markdown()
    assert verdicts(report)["artifacts"] is True
    assert "3 sampled object(s)" in {c.name: c.evidence for c in report.checks}["artifacts"]
    after = {p.name for p in Path(tempfile.gettempdir()).glob("gocdbackup-drill-*")}
    assert after == before  # the scratch store is gone


def test_status_and_metrics_tell_what_is_overdue(
    gocdnext_db: str, pg: LocalPostgres, tmp_path: Path
) -> None:
    backed_up(gocdnext_db, tmp_path)
    repo = ["--repo", f"file://{tmp_path}/repo"]
    metrics_file = tmp_path / "textfile" / "gocdbackup.prom"
    before = cli("--json", "status", *repo)
    assert before.returncode == 1  # never verified, never drilled
    assert json.loads(before.stdout)["overdue"] == ["verify", "drill"]
    assert cli("verify", *repo).returncode == 0
    drilled = cli("drill", *repo, "--scratch-db", pg.dsn(), "--metrics-file", str(metrics_file))
    assert drilled.returncode == 0, drilled.stderr
    after = cli("status", *repo)
    assert after.returncode == 0, after.stdout
    assert "all within their limits" in after.stdout
    text = metrics_file.read_text()
    for metric in (
        "gocdbackup_backups 1.0",
        'gocdbackup_overdue{what="drill"} 0.0',
        "gocdbackup_last_drill_ok 1.0",
        "gocdbackup_last_verify_success_timestamp_seconds",
        "gocdbackup_last_verify_duration_seconds",
        "gocdbackup_last_backup_size_bytes",
    ):
        assert metric in text, text
    stale = cli(
        "--json", "status", *repo, "--max-backup-age", "0s", "--metrics-file", str(metrics_file)
    )
    assert stale.returncode == 1
    assert json.loads(stale.stdout)["overdue"] == ["backup"]
    assert 'gocdbackup_overdue{what="backup"} 1.0' in metrics_file.read_text()


def test_a_table_shorter_than_its_backup_says_fails_the_rows_check(
    gocdnext_db: str, pg: LocalPostgres, tmp_path: Path
) -> None:
    gb, backup_id = backed_up(gocdnext_db, tmp_path)
    # the manifest promises more rows of job_runs than the dump holds: a truncated table
    backup = gb.get_backup(backup_id)
    tables = tuple(
        attrs.evolve(t, rows=t.rows + 7) if t.name == "public.job_runs" else t
        for t in backup.database.tables
    )
    broken = attrs.evolve(backup, database=attrs.evolve(backup.database, tables=tables))
    gb.repository.write_manifest(Manifest(backup=broken))
    report = run_drill(gb, scratch_db=pg.dsn(), raise_on_failure=False)
    assert report.failed == ("rows",), report.to_markdown()
    assert "job_runs" in {c.name: c.evidence for c in report.checks}["rows"]
    assert scratch_databases(pg) == []


def test_drills_are_kept_in_the_history(
    gocdnext_db: str, pg: LocalPostgres, tmp_path: Path
) -> None:
    gb, backup_id = backed_up(gocdnext_db, tmp_path)
    run_drill(gb, scratch_db=pg.dsn(), sample=0)
    run_drill(gb, scratch_db=pg.dsn(), secret_key="ab" * 32, raise_on_failure=False)
    history = drill_history(gb)
    assert [h["ok"] for h in history] == [True, False]
    assert {h["backup_id"] for h in history} == {backup_id}
    assert "secrets" in [n for n, c in history[1]["checks"].items() if c["ok"] is False]


def test_a_given_scratch_store_is_left_as_it_was(
    gocdnext_db: str, pg: LocalPostgres, tmp_path: Path
) -> None:
    gb, _ = backed_up(gocdnext_db, tmp_path)
    scratch = tmp_path / "scratch-bucket"
    scratch.mkdir()
    (scratch / "keep.txt").write_text("someone else's")
    report = run_drill(gb, scratch_db=pg.dsn(), scratch_store=scratch.as_uri(), sample=5)
    assert report.ok, report.to_markdown()
    assert report.left_behind == ()
    left = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*") if p.is_file())
    assert left == ["keep.txt"]
