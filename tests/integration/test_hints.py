"""The lost-bucket rehearsal with default options, exit codes, and every command the CLI prints
for the user to run next: captured from its output and run exactly as printed."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.gocdnext_fixture import check_objects, write_objects
from tests.conftest import PG_PASSWORD, REPO_PASSWORD

#: the installed console script, as a user types it
GOCDBACKUP = str(Path(sys.executable).with_name("gocdbackup"))
HINT = re.compile(r"(?:^\s+|: )(gocdbackup .+)$")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # the user's shell: the database password is in PGPASSWORD too, as printed commands
    # never repeat a password (they say so in a trailing comment)
    environ = {
        **os.environ,
        "GOCDBACKUP_PASSWORD": REPO_PASSWORD,
        "PGPASSWORD": PG_PASSWORD,
        **(env or {}),
    }
    return subprocess.run(
        [GOCDBACKUP, *args], env=environ, capture_output=True, text=True, check=False
    )


def run_printed(command: str, env: dict[str, str] | None = None) -> Any:
    """A command exactly as the CLI printed it."""
    assert PG_PASSWORD not in command
    assert REPO_PASSWORD not in command
    words = shlex.split(command, comments=True)
    assert words[0] == "gocdbackup"
    return run(*words[1:], env=env)


def hints(done: subprocess.CompletedProcess[str]) -> list[str]:
    found = []
    for line in (done.stdout + done.stderr).splitlines():
        match = HINT.search(line)
        if match:
            found.append(match.group(1))
    return found


def layout_key() -> str:
    return f"run/{uuid.uuid4()}/job/{uuid.uuid4()}/{uuid.uuid4()}"


@pytest.fixture
def world(gocdnext_db: str, tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "artifacts"
    root.mkdir()
    store_url = f"file://{root}"
    write_objects(gocdnext_db, FsspecStore(store_url))
    repo = f"file://{tmp_path}/repo"
    assert run("init", "--repo", repo).returncode == 0
    made = run("backup", "--repo", repo, "--db", gocdnext_db, "--artifacts", store_url)
    assert made.returncode == 0, made.stderr
    return {"db": gocdnext_db, "root": root, "store": store_url, "repo": repo, "backup": made}


def test_backup_line_says_what_was_copied_not_a_repr(world: dict[str, Any]) -> None:
    line = world["backup"].stdout
    assert "<BackupSet" not in line
    assert "objects=" not in line
    assert re.search(r"artefacts: copied [\d,]+, reused 0", line), line


def test_lost_bucket_with_default_options_brings_back_every_recent_object(
    world: dict[str, Any],
) -> None:
    """The rehearsal: a bucket lost a little after the nightly backup.  The newest runs are
    younger than the default 6h grace window; recovery must not wait for it."""
    root, db = world["root"], world["db"]
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with psycopg.connect(db) as conn:
        (recent,) = conn.execute(
            "SELECT count(*) FROM artifacts WHERE status = 'ready'"
            " AND created_at > now() - interval '6 hours'"
        ).fetchone() or (0,)
    assert recent > 0  # the point of the rehearsal
    shutil.rmtree(root)
    root.mkdir()
    done = run(
        "runbook", "lost-bucket", "--db", db, "--artifacts", world["store"], "--repo", world["repo"]
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "complete: the store and the database agree" in done.stdout
    after = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before  # byte for byte
    assert check_objects(db, FsspecStore(world["store"]))[1] == []


def test_lost_bucket_left_undone_exits_3_and_its_printed_commands_finish_it(
    world: dict[str, Any],
) -> None:
    db, store, repo = world["db"], world["store"], world["repo"]
    with psycopg.connect(db) as conn:  # rows written after the backup: no backup holds them
        (old,) = conn.execute(
            "UPDATE artifacts SET storage_key = %s WHERE id = (SELECT id FROM artifacts"
            " WHERE status = 'ready' ORDER BY created_at LIMIT 1) RETURNING storage_key",
            (layout_key(),),
        ).fetchone() or ("",)
        (young,) = conn.execute(
            "UPDATE artifacts SET storage_key = %s WHERE id = (SELECT id FROM artifacts"
            " WHERE status = 'ready' ORDER BY created_at DESC LIMIT 1) RETURNING storage_key",
            (layout_key(),),
        ).fetchone() or ("",)
    shutil.rmtree(world["root"])
    world["root"].mkdir()
    first = run("runbook", "lost-bucket", "--db", db, "--artifacts", store, "--repo", repo)
    assert first.returncode == 3, first.stderr
    assert "INCOMPLETE" in first.stdout
    printed = hints(first)
    assert len(printed) == 2, first.stderr  # retire the old row; run again after the window
    confirm = next(c for c in printed if "--confirm" in c)
    again = next(c for c in printed if "--confirm" not in c)
    assert "run again after" in first.stderr
    second = run_printed(confirm)
    assert second.returncode == 3, second.stderr  # the young row is still held back
    with psycopg.connect(db) as conn:
        statuses = dict(
            conn.execute(  # type: ignore[arg-type]
                "SELECT storage_key, status FROM artifacts WHERE storage_key = ANY(%s)",
                ([old, young],),
            ).fetchall()
        )
    assert statuses == {old: "deleting", young: "ready"}
    third = run_printed(again)
    assert third.returncode == 3
    # only the grace window is left, and the same command (no password to omit any more)
    assert hints(third) == [again.partition("  #")[0]]
    assert check_objects(db, FsspecStore(store))[1] == [f"{young}: missing"]


def test_orphans_scan_clean_undo_by_the_printed_commands(
    world: dict[str, Any], tmp_path: Path
) -> None:
    root, db, store = world["root"], world["db"], world["store"]
    orphan = root / layout_key()
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"an artefact whose row is gone")
    out = tmp_path / "report.jsonl"
    env = {"GOCDBACKUP_ARTIFACTS": store, "GOCDBACKUP_DB": db}
    scan = run("orphans", "scan", "--grace", "0s", "--out", str(out), env=env)
    assert scan.returncode == 0, scan.stderr
    (dry_cmd,) = hints(scan)
    dry = run_printed(dry_cmd, env)
    assert dry.returncode == 0, dry.stderr
    assert orphan.exists()
    (apply_cmd,) = hints(dry)
    assert "--confirm plan-" in apply_cmd
    applied = run_printed(apply_cmd, env)
    assert applied.returncode == 0, applied.stderr
    assert not orphan.exists()
    (undo_cmd,) = hints(applied)
    undone = run_printed(undo_cmd, {})  # runs without GOCDBACKUP_ARTIFACTS too
    assert undone.returncode == 0, undone.stderr
    assert "put back 1 object(s)" in undone.stdout
    assert orphan.read_bytes() == b"an artefact whose row is gone"


def test_retention_apply_prints_a_gc_command_that_runs(world: dict[str, Any]) -> None:
    repo = world["repo"]
    plan = json.loads(run("--json", "retention", "plan", "--repo", repo, "--keep-last", "1").stdout)
    applied = run("retention", "apply", "--repo", repo, "--keep-last", "1", "--confirm", plan["id"])
    assert applied.returncode == 0, applied.stderr
    (gc_cmd,) = hints(applied)
    assert run_printed(gc_cmd, {"GOCDBACKUP_REPO": ""}).returncode == 0


def test_a_mistyped_store_is_an_error_and_an_empty_one_is_loud(
    world: dict[str, Any], tmp_path: Path
) -> None:
    db = world["db"]
    mistyped = run("--json", "orphans", "scan", "--db", db, "--artifacts", "file:///no/such/dir")
    assert mistyped.returncode == 1
    assert json.loads(mistyped.stdout)["error"]["code"] == "store_not_found"
    empty = tmp_path / "empty"
    empty.mkdir()
    scanned = run("orphans", "scan", "--db", db, "--artifacts", f"file://{empty}")
    assert scanned.returncode == 0
    assert "holds NO objects" in scanned.stderr
    doc = json.loads(
        run("orphans", "scan", "--json", "--db", db, "--artifacts", f"file://{empty}").stdout
    )
    assert doc["store_empty"] is True


def test_retiring_rows_against_an_empty_store_needs_its_own_flag(
    gocdnext_db: str, tmp_path: Path
) -> None:
    """No backup holds anything: the store stays empty, and retiring every row needs the
    user's word that the store is empty on purpose."""
    empty = tmp_path / "bucket"
    empty.mkdir()
    repo = f"file://{tmp_path}/repo"
    assert run("init", "--repo", repo).returncode == 0
    args = ["runbook", "lost-bucket", "--db", gocdnext_db, "--artifacts", f"file://{empty}"]
    first = run(*args, "--repo", repo, "--grace", "0s")
    assert first.returncode == 3
    confirm = next(c for c in hints(first) if "--confirm" in c)
    refused = run_printed(confirm)
    assert refused.returncode == 1
    assert "--allow-empty-store" in refused.stderr
    with psycopg.connect(gocdnext_db) as conn:
        (deleting,) = conn.execute(
            "SELECT count(*) FROM artifacts WHERE status = 'deleting'"
        ).fetchone() or (0,)
    retired = run_printed(shlex.join([*shlex.split(confirm, comments=True), "--allow-empty-store"]))
    assert retired.returncode == 0, retired.stderr
    with psycopg.connect(gocdnext_db) as conn:
        (after,) = conn.execute(
            "SELECT count(*) FROM artifacts WHERE status = 'deleting'"
        ).fetchone() or (0,)
    assert after > deleting


def test_json_is_accepted_after_the_command_and_usage_errors_are_json(
    world: dict[str, Any],
) -> None:
    repo = world["repo"]
    listed = run("list", "--repo", repo, "--json")
    assert listed.returncode == 0
    assert isinstance(json.loads(listed.stdout), list)
    for args in (
        ["--json", "list", "--repo", repo, "--no-such-option"],
        ["list", "--json", "--repo", repo, "--no-such-option"],
        ["--json", "no-such-command"],
        ["--json", "restore", "x", "--repo", repo, "--db", world["db"]],  # --confirm missing
    ):
        done = run(*args)
        assert done.returncode == 2, args
        assert json.loads(done.stdout)["error"]["code"] == "usage"
