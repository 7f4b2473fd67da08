"""Orphan reconciliation end to end through the CLI: a real gocdnext-shaped PostgreSQL database
and a filesystem artefact store (gocdnext's default backend)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg

from gocdbackup import load_report, plan_cleanup
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.gocdnext_fixture import check_objects, write_objects
from tests.conftest import PG_PASSWORD, REPO_PASSWORD

CLI = [sys.executable, "-m", "gocdbackup.cli"]


def run(*args: str, ok: bool = True, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD}
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False)
    if ok:
        assert done.returncode == code, done.stderr
    return done


def as_json(*args: str, code: int = 0) -> Any:
    """The JSON document of a run that exits ``code`` (3: done as far as it could)."""
    return json.loads(run("--json", *args, code=code).stdout)


def scan_to(out: Path, db: str, store_url: str) -> Any:
    """``orphans scan`` with no grace window, the full report written to ``out``."""
    return as_json(
        "orphans", "scan", "--db", db, "--artifacts", store_url, "--grace", "0s", "--out", str(out)
    )


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def layout_key() -> str:
    return f"run/{uuid.uuid4()}/job/{uuid.uuid4()}/{uuid.uuid4()}"


def test_scan_clean_undo_on_a_real_database(gocdnext_db: str, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    store_url = f"file://{root}"
    write_objects(gocdnext_db, FsspecStore(store_url))
    scan = ["orphans", "scan", "--db", gocdnext_db, "--artifacts", store_url, "--grace", "0s"]
    base_path = tmp_path / "baseline.json"
    baseline = as_json(*scan, "--out", str(base_path))
    assert baseline["counts"]["ok"] > 0
    assert baseline["counts"]["orphan_object"] == 0

    orphan = layout_key()
    (root / orphan).parent.mkdir(parents=True)
    (root / orphan).write_bytes(b"an artefact whose project was deleted")
    partial = layout_key() + ".part"
    (root / partial).parent.mkdir(parents=True)
    (root / partial).write_bytes(b"an interrupted upload")
    (root / "notes").mkdir()
    (root / "notes" / "README ü.txt").write_text("not gocdnext's")
    with psycopg.connect(gocdnext_db) as conn:
        (lost,) = conn.execute(
            "SELECT storage_key FROM artifacts WHERE status = 'ready' ORDER BY storage_key LIMIT 1"
        ).fetchone() or ("",)
    (root / lost).unlink()

    out, csv_path = tmp_path / "report.json", tmp_path / "report.csv"
    report = as_json(*scan, "--out", str(out), "--csv", str(csv_path))
    counts = report["counts"]
    assert counts["orphan_object"] == 1
    assert counts["partial_upload"] == 1
    assert counts["foreign_object"] == 1
    assert counts["missing_object"] == baseline["counts"]["missing_object"] + 1
    assert report["bytes"]["orphan_object"] == len(b"an artefact whose project was deleted")
    rows = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    missing = next(r for r in rows if r["key"] == lost)
    assert (missing["class"], missing["table"]) == ("missing_object", "artifacts")
    assert missing["row_id"]
    assert csv_path.read_text().startswith("key,class,size_bytes,table,row_id")
    diff = as_json("orphans", "diff", str(base_path), str(out))
    changed = {c["key"]: (c["before"], c["after"]) for c in diff["changes"]}
    assert changed[orphan] == (None, "orphan_object")
    assert changed[lost] == (None, "missing_object")
    assert diff["count_changes"]["orphan_object"] == 1
    assert PG_PASSWORD not in out.read_text() + json.dumps(report)  # the DSN's password

    before = tree(root)
    clean = ["orphans", "clean", "--report", str(out), "--db", gocdnext_db]
    dry = as_json(*clean, "--dry-run")
    assert dry["done"] == {"orphan_object": 1, "partial_upload": 1}
    assert tree(root) == before
    refused = run(*clean, "--confirm", "plan-not-this-one", ok=False)
    assert refused.returncode == 1
    assert "plan id" in refused.stderr
    assert tree(root) == before

    done = as_json(*clean, "--confirm", dry["plan_id"])
    assert done["done"] == {"orphan_object": 1, "partial_upload": 1}
    assert not (root / orphan).exists()
    assert not (root / partial).exists()
    assert (root / "notes" / "README ü.txt").exists()  # foreign: never touched by default
    assert [c["id"] for c in as_json("orphans", "list", "--artifacts", store_url)] == [done["id"]]

    undone = as_json("orphans", "undo", done["id"], "--artifacts", store_url)
    assert undone["restored"] == 2
    assert tree(root) == before  # byte for byte, and the quarantine is gone


def test_the_two_runbooks(gocdnext_db: str, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    store_url = f"file://{root}"
    write_objects(gocdnext_db, FsspecStore(store_url))
    repo = f"file://{tmp_path}/repo"
    run("init", "--repo", repo)
    run("backup", "--repo", repo, "--db", gocdnext_db, "--artifacts", store_url)

    # lost the bucket, kept Postgres: everything comes back from the backup
    with psycopg.connect(gocdnext_db) as conn:  # a row written after the backup: unrecoverable
        (new_key,) = conn.execute(
            "UPDATE artifacts SET storage_key = %s WHERE id = (SELECT id FROM artifacts"
            " WHERE status = 'ready' ORDER BY id LIMIT 1) RETURNING storage_key",
            (layout_key(),),
        ).fetchone() or ("",)
    shutil.rmtree(root)
    root.mkdir()
    bucket = ["runbook", "lost-bucket", "--db", gocdnext_db, "--artifacts", store_url]
    first = as_json(*bucket, "--repo", repo, "--grace", "0s", code=3)
    assert not first["complete"]
    recovered = first["steps"][1]
    assert recovered["unrecoverable"] == 1
    assert recovered["recovered"] > 0
    assert first["confirm_id"].startswith("retire-")
    _, problems = check_objects(gocdnext_db, FsspecStore(store_url))
    assert problems == [f"{new_key}: missing"]
    wrong = run(*bucket, "--repo", repo, "--grace", "0s", "--confirm", "retire-0", ok=False)
    assert wrong.returncode == 1
    second = as_json(*bucket, "--repo", repo, "--grace", "0s", "--confirm", first["confirm_id"])
    assert second["applied"]
    assert second["complete"]
    assert second["steps"][-1]["counts"]["missing_object"] == 0
    with psycopg.connect(gocdnext_db) as conn:
        (status,) = conn.execute(
            "SELECT status FROM artifacts WHERE storage_key = %s", (new_key,)
        ).fetchone() or ("",)
    assert status == "deleting"  # gocdnext's sweeper removes it at its next tick

    # lost Postgres, kept the bucket: objects newer than the restored rows are quarantined
    with psycopg.connect(gocdnext_db) as conn:
        (gone,) = conn.execute(
            "DELETE FROM artifacts WHERE id = (SELECT id FROM artifacts WHERE status = 'ready'"
            " ORDER BY id DESC LIMIT 1) RETURNING storage_key"
        ).fetchone() or ("",)
    database = ["runbook", "lost-database", "--db", gocdnext_db, "--artifacts", store_url]
    plan = as_json(*database, "--grace", "0s", code=3)
    assert not plan["applied"]
    assert (root / gone).exists()
    applied = as_json(*database, "--grace", "0s", "--confirm", plan["confirm_id"])
    assert applied["applied"]
    assert not (root / gone).exists()
    cleanup_id = applied["steps"][1]["id"]
    undone = as_json("orphans", "undo", cleanup_id, "--artifacts", store_url)
    assert undone["restored"] == 1
    assert (root / gone).exists()


def test_refusals_exit_non_zero_and_change_nothing(
    gocdnext_db: str, pg: Any, tmp_path: Path
) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    store_url = f"file://{root}"
    write_objects(gocdnext_db, FsspecStore(store_url))
    orphan = layout_key()
    (root / orphan).parent.mkdir(parents=True)
    (root / orphan).write_bytes(b"orphan")
    before = tree(root)

    plain = run("orphans", "scan", "--db", pg.dsn(), "--artifacts", store_url, ok=False)
    assert plain.returncode == 1
    assert "not a gocdnext database" in plain.stderr

    out = tmp_path / "report.json"
    scan_to(out, gocdnext_db, store_url)
    other = tmp_path / "elsewhere"
    other.mkdir()
    plan_id = plan_cleanup(load_report(out)).id
    clean = ["orphans", "clean", "--report", str(out), "--confirm", plan_id]
    moved = run(*clean, "--db", gocdnext_db, "--artifacts", f"file://{other}", ok=False)
    assert moved.returncode == 1
    assert "was made for" in moved.stderr
    wrong_db = run(*clean, "--db", pg.dsn(), ok=False)
    assert wrong_db.returncode == 1
    assert "was made for" in wrong_db.stderr
    no_confirm = run("orphans", "clean", "--report", str(out), "--db", gocdnext_db, ok=False)
    assert no_confirm.returncode == 1
    assert "--confirm" in no_confirm.stderr
    elsewhere = tmp_path / "elsewhere.json"
    as_json(
        "orphans",
        "scan",
        "--db",
        gocdnext_db,
        "--artifacts",
        f"file://{other}",
        "--out",
        str(elsewhere),
    )
    mixed = run("orphans", "diff", str(out), str(elsewhere), ok=False)
    assert mixed.returncode == 1
    assert "different databases or stores" in mixed.stderr
    (tmp_path / "junk.json").write_text("{}")
    junk = run(*clean[:2], "--report", str(tmp_path / "junk.json"), "--db", gocdnext_db, ok=False)
    assert junk.returncode == 1
    assert "not an orphan report" in junk.stderr
    assert tree(root) == before


def test_kill_9_mid_cleanup_then_undo(gocdnext_db: str, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    store_url = f"file://{root}"
    orphans = [layout_key() for _ in range(1500)]
    for n, key in enumerate(orphans):
        (root / key).parent.mkdir(parents=True)
        (root / key).write_bytes(os.urandom(1000 + n))
    before = tree(root)
    out = tmp_path / "report.json"
    report = scan_to(out, gocdnext_db, store_url)
    assert report["counts"]["orphan_object"] == len(orphans)
    env = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD}
    cleaning = subprocess.Popen(
        [
            *CLI,
            "orphans",
            "clean",
            "--report",
            str(out),
            "--db",
            gocdnext_db,
            "--transfers",
            "1",
            "--confirm",
            plan_cleanup(load_report(out)).id,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    quarantine = root / ".gocdbackup-quarantine"
    while cleaning.poll() is None:
        moved = sum(1 for k in orphans[:50] if not (root / k).exists())
        if moved:
            cleaning.send_signal(signal.SIGKILL)  # kill -9, mid-cleanup
            break
    cleaning.wait()
    (cleanup_dir,) = quarantine.iterdir()
    assert not (cleanup_dir / "result.json").exists()  # it died before the end
    assert sum(1 for k in orphans if not (root / k).exists()) < len(orphans)
    undone = as_json("orphans", "undo", cleanup_dir.name, "--artifacts", store_url)
    assert undone["restored"] >= 1
    assert (undone["conflicts"], undone["lost"]) == ([], [])
    after = tree(root)
    # the copy the kill interrupted may have left its temporary file (never a visible object)
    leftovers = [k for k in after if k.startswith(".gocdbackup-quarantine/")]
    assert all(Path(k).name.startswith(".gocdbackup-tmp-") for k in leftovers)
    assert {k: v for k, v in after.items() if k not in leftovers} == before  # byte for byte


def test_sharded_scan_merges_to_the_report_of_one_process(gocdnext_db: str, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    store_url = f"file://{root}"
    write_objects(gocdnext_db, FsspecStore(store_url))
    for n in range(7):  # orphans spread over the key space, and a foreign file
        key = layout_key()
        (root / key).parent.mkdir(parents=True)
        (root / key).write_bytes(b"orphan %d" % n)
    (root / "zz-notes.txt").write_text("not gocdnext's")
    with psycopg.connect(gocdnext_db) as conn:
        (lost,) = conn.execute(
            "SELECT storage_key FROM artifacts WHERE status = 'ready' ORDER BY storage_key DESC"
            " LIMIT 1"
        ).fetchone()
    (root / lost).unlink()
    one, three = tmp_path / "one.jsonl", tmp_path / "three.jsonl"
    base = ["orphans", "scan", "--db", gocdnext_db, "--artifacts", store_url, "--grace", "0s"]
    single = as_json(*base, "--out", str(one))
    sharded = as_json(*base, "--shards", "3", "--out", str(three))
    assert sharded["counts"] == single["counts"]
    assert sharded["bytes"] == single["bytes"]
    assert sharded["store_objects"] == single["store_objects"]
    assert sharded["counts"]["orphan_object"] == 7
    assert sharded["counts"]["missing_object"] == 1
    assert sharded["complete"]
    a, b = load_report(one), load_report(three)
    assert [(r.key, r.cls) for r in b.rows()] == [(r.key, r.cls) for r in a.rows()]
    # the merged report drives a cleanup like any other
    dry = as_json("orphans", "clean", "--report", str(three), "--db", gocdnext_db, "--dry-run")
    assert dry["done"]["orphan_object"] == 7
    refused = run(*base, "--shards", "2", "--resume", str(one), ok=False)
    assert refused.returncode == 2
    assert "--resume" in refused.stderr
