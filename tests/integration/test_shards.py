"""Sharded artefact backups through the CLI, with real processes, a real gocdnext-shaped
database and a filesystem artefact store: worker processes on one machine (``--shards``),
and the detached protocol an Indexed Job runs (``backup --detach``, ``shard run``, ``shard
finish``), including a shard killed with SIGKILL mid-copy and run again."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gocdbackup.testing import fill_store

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "gocdbackup.cli"]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, check=False, env=env, timeout=600
    )


def as_json(*args: str) -> Any:
    done = cli("--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _store(tmp_path: Path, dsn: str) -> tuple[str, int]:
    url = f"file://{tmp_path / 'artifacts'}"
    (tmp_path / "artifacts").mkdir()
    return url, fill_store(dsn, url)


def test_worker_processes_back_up_what_one_process_does(
    gocdnext_db: str, repo_url: str, repo_env: str, tmp_path: Path
) -> None:
    artifacts, objects = _store(tmp_path, gocdnext_db)
    assert cli("init", "--repo", repo_url).returncode == 0
    where = ["--repo", repo_url, "--db", gocdnext_db, "--artifacts", artifacts]
    sharded = as_json("backup", *where, "--shards", "2")
    assert sharded["artifacts"]["copied"] == objects
    plain = as_json("backup", *where)
    assert plain["artifacts"]["total"] == sharded["artifacts"]["total"]
    assert plain["artifacts"]["reused"] == objects  # the shards' copies, reused
    listed = as_json("list", "--repo", repo_url)
    assert {b["id"] for b in listed} == {sharded["id"], plain["id"]}
    usage = cli("backup", "--repo", repo_url, "--db", gocdnext_db, "--shards", "2")
    assert usage.returncode == 2
    assert "--artifacts" in usage.stderr


def _detach(repo_url: str, dsn: str, artifacts: str, shards: int) -> str:
    plan = as_json(
        "backup", "--repo", repo_url, "--db", dsn, "--artifacts", artifacts,
        "--detach", "--shards", str(shards),
    )  # fmt: skip
    assert plan["status"] == "awaiting_shards"
    assert plan["shards"] == shards
    return str(plan["id"])


def test_detached_shards_run_as_printed_then_finish(
    gocdnext_db: str, repo_url: str, repo_env: str, tmp_path: Path
) -> None:
    artifacts, objects = _store(tmp_path, gocdnext_db)
    assert cli("init", "--repo", repo_url).returncode == 0
    backup_id = _detach(repo_url, gocdnext_db, artifacts, 2)
    assert as_json("list", "--repo", repo_url) == []  # not a backup yet
    early = cli("shard", "finish", backup_id, "--repo", repo_url)
    assert early.returncode == 3
    assert "0, 1" in early.stderr
    printed = [
        line.strip() for line in early.stderr.splitlines() if line.strip().startswith("gocdbackup")
    ]
    assert len(printed) == 2
    for command in printed:  # each shard, as printed (a pod each, in an Indexed Job)
        ran = cli(*shlex.split(command)[1:])
        assert ran.returncode == 0, ran.stderr
    done = as_json("shard", "finish", backup_id, "--repo", repo_url, "--db", gocdnext_db)
    assert done["id"] == backup_id
    assert done["artifacts"]["copied"] == objects
    assert done["artifacts"]["missing"] == 0
    assert [b["id"] for b in as_json("list", "--repo", repo_url)] == [backup_id]
    again = cli("shard", "finish", backup_id, "--repo", repo_url)
    assert again.returncode == 1
    assert "committed already" in again.stderr


def test_a_shard_killed_mid_copy_is_run_again_without_copying_twice(
    gocdnext_db: str, repo_url: str, repo_env: str, tmp_path: Path
) -> None:
    artifacts, objects = _store(tmp_path, gocdnext_db)
    assert cli("init", "--repo", repo_url).returncode == 0
    backup_id = _detach(repo_url, gocdnext_db, artifacts, 1)
    # the shard in a pod that dies: killed once its first journal batch (100) is written
    journal = Path(repo_url.removeprefix("file://")) / "journal" / f"{backup_id}.0"
    env = {**os.environ, "JOB_COMPLETION_INDEX": "0"}
    proc = subprocess.Popen(
        [*CLI, "shard", "run", backup_id, "--repo", repo_url, "--transfers", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    # a batch counts once it is renamed into place (``<seq>.bin``): the temporary file that
    # comes first is not a journal yet
    while not (journal.exists() and any(journal.glob("*.bin"))) and proc.poll() is None:
        assert time.monotonic() < deadline, "no journal was written"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the shard finished before it could be killed"

    rerun = cli("--json", "shard", "run", backup_id, "--repo", repo_url, env=env)
    assert rerun.returncode == 0, rerun.stderr
    counts = json.loads(rerun.stdout)["artifacts"]
    assert counts["reused"] >= 100  # what the killed run journaled is not copied again
    assert counts["copied"] + counts["reused"] == objects
    done = as_json("shard", "finish", backup_id, "--repo", repo_url, "--db", gocdnext_db)
    assert done["artifacts"]["missing"] == 0
    assert not journal.exists() or not any(journal.iterdir())
    verify = cli("verify", "--repo", repo_url, backup_id, "--read-data", "100")
    assert verify.returncode == 0, verify.stderr
