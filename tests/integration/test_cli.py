"""The CLI, as a user runs it: real processes, real PostgreSQL, exit codes and --json output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import psycopg
import pytest

from gocdbackup.testing import LocalPostgres
from tests.conftest import PG_PASSWORD, REPO_PASSWORD

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "gocdbackup.cli"]


def run(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD, **(env or {})}
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, env=full_env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def test_full_story_with_json(pg: LocalPostgres, gocdnext_db: str, repo_url: str) -> None:
    run("init", "--repo", repo_url)
    made = json.loads(
        run(
            "--json",
            "backup",
            "--repo",
            repo_url,
            "--db",
            gocdnext_db,
            "--label",
            "cli",
            "--transfers",
            "2",
        ).stdout
    )
    assert made["status"] == "done"
    assert made["size_bytes"] > 0
    assert made["label"] == "cli"

    listed = json.loads(run("--json", "list", "--repo", repo_url).stdout)
    assert [b["id"] for b in listed] == [made["id"]]

    shown = json.loads(run("--json", "show", made["id"], "--repo", repo_url).stdout)
    assert shown["point"]["goose_version"] == 86
    assert isinstance(shown["components"][0]["chunks"], int)

    target = pg.dsn("cli_" + made["id"][-6:])
    restore = ["restore", made["id"], "--repo", repo_url, "--db", target, "--confirm", made["id"]]
    restored = json.loads(run("--json", *restore).stdout)
    assert restored["goose_version"] == 86
    refused = run(*restore, check=False)
    assert refused.returncode == 1
    assert "--replace" in refused.stderr

    verified = json.loads(run("--json", "verify", "--repo", repo_url, "--read-data", "100%").stdout)
    assert verified["ok"] is True


def test_env_defaults_for_repo_and_db(gocdnext_db: str, repo_url: str) -> None:
    env = {"GOCDBACKUP_REPO": repo_url, "GOCDBACKUP_DB": gocdnext_db}
    run("init", env=env)
    run("backup", env=env)
    assert len(json.loads(run("--json", "list", env=env).stdout)) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "--repo", "file:///nonexistent/place"], "no gocdbackup repository"),
        (
            ["verify", "--repo", "file:///nonexistent/place", "--read-data", "lots"],
            "not a percentage",
        ),
        (["init", "--repo", ""], "repository URL is required"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(args: list[str], message: str) -> None:
    proc = run(*args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_wrong_repo_passphrase(repo_url: str) -> None:
    run("init", "--repo", repo_url)
    proc = run(
        "--json", "list", "--repo", repo_url, env={"GOCDBACKUP_PASSWORD": "Zq9-not-it"}, check=False
    )
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["error"]["code"] == "wrong_password"
    assert "error: wrong passphrase for the repository at file://" in proc.stderr
    assert "Zq9-not-it" not in proc.stderr + proc.stdout


def test_missing_passphrase(repo_url: str) -> None:
    proc = run("list", "--repo", repo_url, env={"GOCDBACKUP_PASSWORD": ""}, check=False)
    assert proc.returncode == 1
    assert "GOCDBACKUP_PASSWORD" in proc.stderr


def test_password_file_option(repo_url: str, tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text("from-a-file\n")
    env = {"GOCDBACKUP_PASSWORD": ""}
    run("init", "--repo", repo_url, "--password-file", str(secret), env=env)
    run("list", "--repo", repo_url, "--password-file", str(secret), env=env)


def test_errors_never_show_the_server_password(pg: LocalPostgres, repo_url: str) -> None:
    run("init", "--repo", repo_url)
    proc = run("backup", "--repo", repo_url, "--db", pg.dsn("nope"), check=False)
    assert proc.returncode == 1
    assert "does not exist" in proc.stderr
    assert PG_PASSWORD not in proc.stderr + proc.stdout


@contextmanager
def blocked_backup(
    gocdnext_db: str, repo_url: str
) -> Iterator[tuple[subprocess.Popen[str], list[psutil.Process]]]:
    """A CLI backup whose pg_dump is waiting on a lock another session holds."""
    run("init", "--repo", repo_url)
    blocker = psycopg.connect(gocdnext_db)
    blocker.execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
    env = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD}
    proc = subprocess.Popen(
        [*CLI, "backup", "--repo", repo_url, "--db", gocdnext_db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        dumpers: list[psutil.Process] = []
        while not dumpers and time.monotonic() < deadline:
            dumpers = [
                c
                for c in psutil.Process(proc.pid).children(recursive=True)
                if c.name() == "pg_dump"
            ]
            time.sleep(0.05)
        assert dumpers, "pg_dump never started"
        time.sleep(0.3)  # let it reach the lock
        yield proc, dumpers
    finally:
        blocker.close()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)


def test_ctrl_c_during_backup_commits_nothing(gocdnext_db: str, repo_url: str) -> None:
    """The user presses Ctrl-C: exit 130, nothing listed, no pg_dump left behind."""
    with blocked_backup(gocdnext_db, repo_url) as (proc, dumpers):
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err
    assert not any(d.is_running() and d.status() != psutil.STATUS_ZOMBIE for d in dumpers)
    assert json.loads(run("--json", "list", "--repo", repo_url).stdout) == []


def test_crash_during_backup_commits_nothing(gocdnext_db: str, repo_url: str) -> None:
    """kill -9 of the backup process: no cleanup code runs, and still nothing is listed;
    the next backup into the same repository works."""
    with blocked_backup(gocdnext_db, repo_url) as (proc, dumpers):
        proc.kill()
        proc.wait(timeout=60)
    for d in dumpers:  # orphaned: it dies on its broken pipe once the lock is released
        with suppress(psutil.NoSuchProcess):
            d.wait(timeout=60)
    assert json.loads(run("--json", "list", "--repo", repo_url).stdout) == []
    run("backup", "--repo", repo_url, "--db", gocdnext_db)
    assert len(json.loads(run("--json", "list", "--repo", repo_url).stdout)) == 1


def test_keys_and_pins(gocdnext_db: str, repo_url: str, tmp_path: Path) -> None:
    run("init", "--repo", repo_url)
    new = tmp_path / "new-pass"
    new.write_text("break-glass-passphrase\n")
    added = json.loads(
        run(
            "--json",
            "key",
            "add",
            "--repo",
            repo_url,
            "--new-password-file",
            str(new),
            "--label",
            "break-glass",
        ).stdout
    )
    keys = json.loads(run("--json", "key", "list", "--repo", repo_url).stdout)
    assert [k["label"] for k in keys] == ["initial", "break-glass"]
    assert [k["in_use"] for k in keys] == [True, False]
    assert "passphrase" not in json.dumps(keys)

    refused = run("key", "remove", keys[0]["id"], "--repo", repo_url, check=False)
    assert refused.returncode == 1
    assert "in use" in refused.stderr
    other = {"GOCDBACKUP_PASSWORD": "break-glass-passphrase"}
    run("key", "remove", keys[0]["id"], "--repo", repo_url, env=other)
    assert run("list", "--repo", repo_url, check=False).returncode == 1  # old passphrase gone
    again = json.loads(run("--json", "key", "list", "--repo", repo_url, env=other).stdout)
    assert [k["id"] for k in again] == [added["id"]]

    run("key", "passwd", "--repo", repo_url, env={**other, "GOCDBACKUP_NEW_PASSWORD": "third"})
    made = json.loads(
        run(
            "--json",
            "backup",
            "--repo",
            repo_url,
            "--db",
            gocdnext_db,
            env={"GOCDBACKUP_PASSWORD": "third"},
        ).stdout
    )
    third = {"GOCDBACKUP_PASSWORD": "third"}
    pinned = json.loads(
        run(
            "--json", "pin", made["id"], "--repo", repo_url, "--reason", "release 1.4", env=third
        ).stdout
    )
    assert pinned["pin"] == "release 1.4"
    assert (
        json.loads(run("--json", "list", "--repo", repo_url, env=third).stdout)[0]["pin"]
        == "release 1.4"
    )
    run("unpin", made["id"], "--repo", repo_url, env=third)
    assert json.loads(run("--json", "list", "--repo", repo_url, env=third).stdout)[0]["pin"] is None


def test_gc_and_unlock(gocdnext_db: str, repo_url: str, tmp_path: Path) -> None:
    run("init", "--repo", repo_url)
    run("backup", "--repo", repo_url, "--db", gocdnext_db)
    root = Path(repo_url.removeprefix("file://"))
    stray = root / "data" / "ab" / ("ab" * 32)  # as left by a crashed backup, two days ago
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"G1" + bytes(40))
    old = time.time() - 2 * 86400
    os.utime(stray, (old, old))

    dry = json.loads(run("--json", "gc", "--repo", repo_url, "--dry-run").stdout)
    assert dry["to_delete"] == 1
    assert dry["dry_run"] is True
    assert stray.exists()
    done = json.loads(run("--json", "gc", "--repo", repo_url).stdout)
    assert done["deleted"] == 1
    assert not stray.exists()
    assert json.loads(run("--json", "verify", "--repo", repo_url, "--read-data", "100").stdout)[
        "ok"
    ]
    assert run("gc", "--repo", repo_url, "--grace", "soon", check=False).returncode == 2

    expired = {
        "id": "deadbeef",
        "kind": "exclusive",
        "operation": "gc",
        "host": "gone",
        "pid": 1,
        "created_at": "2026-01-01T00:00:00+00:00",
        "expires_at": "2026-01-01T00:05:00+00:00",
    }
    (root / "locks").mkdir(exist_ok=True)
    (root / "locks" / "deadbeef.json").write_text(json.dumps(expired))
    assert run("unlock", "--repo", repo_url, check=False).returncode == 2  # --stale is required
    assert json.loads(run("--json", "unlock", "--repo", repo_url, "--stale").stdout)["removed"] == [
        "locks/deadbeef.json"
    ]


def test_copy_to_a_second_repository(
    pg: LocalPostgres, gocdnext_db: str, repo_url: str, tmp_path: Path
) -> None:
    offsite = f"file://{tmp_path}/offsite"
    run("init", "--repo", repo_url)
    run("init", "--repo", offsite, env={"GOCDBACKUP_PASSWORD": "offsite-pass"})
    made = json.loads(run("--json", "backup", "--repo", repo_url, "--db", gocdnext_db).stdout)
    to = {"GOCDBACKUP_TO_PASSWORD": "offsite-pass"}
    copied = json.loads(
        run("--json", "copy", made["id"], "--repo", repo_url, "--to", offsite, env=to).stdout
    )
    assert copied["blobs_written"] > 0
    again = json.loads(
        run("--json", "copy", made["id"], "--repo", repo_url, "--to", offsite, env=to).stdout
    )
    assert again["already_there"] is True
    off = {"GOCDBACKUP_PASSWORD": "offsite-pass"}
    target = pg.dsn("offsite_" + made["id"][-6:])
    run("restore", made["id"], "--repo", offsite, "--db", target, "--confirm", made["id"], env=off)
    wrong = run("copy", made["id"], "--repo", repo_url, "--to", offsite, check=False)
    assert wrong.returncode == 1
    assert "wrong passphrase" in wrong.stderr


def test_retention_plan_and_apply(gocdnext_db: str, repo_url: str) -> None:
    run("init", "--repo", repo_url)
    ids = [
        json.loads(run("--json", "backup", "--repo", repo_url, "--db", gocdnext_db).stdout)["id"]
        for _ in range(3)
    ]
    run("pin", ids[0], "--repo", repo_url, "--reason", "legal hold")
    policy = ["--keep-last", "1", "--tz", "Europe/Berlin"]
    plan = json.loads(run("--json", "retention", "plan", "--repo", repo_url, *policy).stdout)
    decisions = {b["id"]: b for b in plan["backups"]}
    assert decisions[ids[2]]["keep"]
    assert "last 1" in decisions[ids[2]]["reasons"]
    assert decisions[ids[0]]["keep"]
    assert "pinned: legal hold" in decisions[ids[0]]["reasons"]
    assert decisions[ids[1]]["keep"] is False

    wrong = run(
        "retention", "apply", "--repo", repo_url, *policy, "--confirm", "not-the-plan", check=False
    )
    assert wrong.returncode == 1
    assert "nothing was changed" in wrong.stderr
    assert len(json.loads(run("--json", "list", "--repo", repo_url).stdout)) == 3

    applied = json.loads(
        run(
            "--json", "retention", "apply", "--repo", repo_url, *policy, "--confirm", plan["id"]
        ).stdout
    )
    assert applied["forgotten"] == [ids[1]]
    assert [b["id"] for b in json.loads(run("--json", "list", "--repo", repo_url).stdout)] == [
        ids[0],
        ids[2],
    ]
    bad_tz = run(
        "retention",
        "plan",
        "--repo",
        repo_url,
        "--keep-daily",
        "7",
        "--tz",
        "Mars/Olympus",
        check=False,
    )
    assert bad_tz.returncode == 1
    assert "time zone" in bad_tz.stderr
