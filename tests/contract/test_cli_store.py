"""``gocdbackup store audit`` and ``store restore-to-time`` as a user runs them, on moto in
server mode: the audit's findings and exit codes, the dry run's plan id, the printed command
that carries it out (run as printed), a stale or mistyped id, and bad input."""

from __future__ import annotations

import hashlib
import json
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gocdbackup.drivers.fsspec_store import FsspecStore

from .conftest import Server, s3_bucket, unique_bucket
from .test_bucket_pit import next_second
from .test_orphans_s3 import cli


def _bucket(server: Server, *, versioned: bool) -> tuple[FsspecStore, list[str]]:
    return s3_bucket(server, versioned=versioned)


def _json(done: Any) -> Any:
    return json.loads(done.stdout)


def test_audit_of_an_unversioned_bucket_fails_with_findings(moto_server: Server) -> None:
    _, where = _bucket(moto_server, versioned=False)
    done = cli("--json", "store", "audit", *where)
    assert done.returncode == 1
    doc = _json(done)
    findings = {f["check"]: f for f in doc["findings"]}
    assert set(findings) == {
        "versioning",
        "lifecycle",
        "replication",
        "object_lock",
        "encryption",
        "public_access",
    }
    assert findings["versioning"]["ok"] is False
    assert "put-bucket-versioning" in findings["versioning"]["advice"]
    assert all(set(f) >= {"check", "ok", "advice"} for f in doc["findings"])
    human = cli("store", "audit", *where)
    assert human.returncode == 1
    command = human.stderr.split("left to do:")[1].splitlines()[1].strip()
    accepted = cli(*shlex.split(command)[1:])  # the printed command, as printed
    assert accepted.returncode == 0, accepted.stderr
    assert "skipped" in accepted.stdout


def test_restore_to_time_dry_run_then_confirm_as_printed(moto_server: Server) -> None:
    store, where = _bucket(moto_server, versioned=True)
    store.write("a", b"a1")
    store.write("b", b"b1")
    next_second()
    at = datetime.now(UTC).isoformat()
    next_second()
    store.write("a", b"a2")
    store.delete("b")
    store.write("c", b"c1")
    args = ["store", "restore-to-time", *where, "--time", at]
    plan = _json(cli("--json", *args, "--dry-run"))
    assert plan["counts"] == {"restore": 2, "delete": 1, "unchanged": 0}
    assert plan["dry_run"] is True
    assert plan["id"].startswith("pit-")
    assert store.read("a") == b"a2"  # a dry run changes nothing

    shown = cli(*args)  # neither --dry-run nor --confirm: the plan, and exit 3
    assert shown.returncode == 3
    command = shown.stderr.split("left to do:")[1].splitlines()[1].strip()
    assert f"--confirm {plan['id']}" in command

    wrong = cli(*args, "--confirm", "pit-0123456789abcdef")
    assert wrong.returncode == 1
    assert "nothing was changed" in wrong.stderr
    assert store.read("a") == b"a2"

    done = cli(*shlex.split(command)[1:])
    assert done.returncode == 0, done.stderr
    assert {i.key: store.read(i.key) for i in store.list("")} == {"a": b"a1", "b": b"b1"}
    again = _json(cli("--json", *args, "--confirm", plan["id"]))  # the same id: nothing left
    assert again["done"] == {"restore": 0, "delete": 0}
    assert again["ok"] is True


def test_restore_to_time_refuses_bad_input(moto_server: Server) -> None:
    _, unversioned = _bucket(moto_server, versioned=False)
    now = datetime.now(UTC).isoformat()
    off = cli("store", "restore-to-time", *unversioned, "--time", now, "--dry-run")
    assert off.returncode == 1
    assert "versioning is off" in off.stderr
    _, where = _bucket(moto_server, versioned=True)
    future = cli("store", "restore-to-time", *where, "--time", "2999-01-01T00:00:00+00:00")
    assert future.returncode == 1
    assert "in the future" in future.stderr
    naive = cli("store", "restore-to-time", *where, "--time", "2026-01-01T00:00:00")
    assert naive.returncode == 1
    assert "no time zone" in naive.stderr
    garbage = cli("store", "restore-to-time", *where, "--time", "yesterday")
    assert garbage.returncode == 1
    assert "not an ISO 8601 time" in garbage.stderr
    missing = cli(
        "store",
        "restore-to-time",
        "--artifacts",
        f"s3://{unique_bucket()}",
        "--artifacts-option",
        f"endpoint_url={moto_server.endpoint}",
        "--time",
        now,
    )
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr


def test_a_rollback_handed_to_s3_batch_operations_and_run_here(
    moto_server: Server, tmp_path: Path
) -> None:
    """The copies go to a Batch Operations manifest and job (the deletes are done at once);
    the local executor runs the same manifest; the bucket ends as it was at T, and the
    printed commands run as printed."""
    store, where = _bucket(moto_server, versioned=True)
    store.write("a", b"a1")
    store.write("dir/b c", b"b1")  # a key that needs URL-encoding in the manifest
    next_second()
    at = datetime.now(UTC).isoformat()
    next_second()
    store.write("a", b"a2")
    store.delete("dir/b c")
    store.write("new", b"n1")
    args = ["store", "restore-to-time", *where, "--time", at]
    plan = _json(cli("--json", *args, "--dry-run"))
    manifest = tmp_path / "rollback.csv"
    batch = [
        *("--emit-batch-manifest", str(manifest)),
        *("--batch-account", "123456789012"),
        *("--batch-role", "arn:aws:iam::123456789012:role/gocdbackup-batch"),
    ]
    bad = cli(*args, "--confirm", plan["id"], *batch[:2], "--batch-account", "12", *batch[4:])
    assert bad.returncode == 1
    assert "not an AWS account id" in bad.stderr
    assert store.exists("new")  # nothing was done

    emitted = cli(*args, "--confirm", plan["id"], *batch)
    assert emitted.returncode == 3, emitted.stderr
    assert not store.exists("new")  # deleted here
    assert store.read("a") == b"a2"  # the copies are the job's
    lines = manifest.read_text().splitlines()
    assert sorted(lines)[0].split(",")[1] == "a"
    assert any(",dir/b%20c," in line for line in lines)
    job = json.loads((tmp_path / "rollback.csv.job.json").read_text())
    assert job["Operation"]["S3PutObjectCopy"]["TargetResource"] == f"arn:aws:s3:::{store.root}"
    assert job["Manifest"]["Location"]["ETag"] == hashlib.md5(manifest.read_bytes()).hexdigest()
    printed = [
        line.strip()
        for line in emitted.stderr.splitlines()
        if line.strip().startswith(("aws ", "gocdbackup "))
    ]
    assert printed[0].startswith(f"aws s3api put-object --bucket {store.root} --key ")
    assert printed[1].startswith("aws s3control create-job --account-id 123456789012")

    ran = cli("store", "run-manifest", str(manifest), *where[2:])  # the job, done here
    assert ran.returncode == 0, ran.stderr
    assert {i.key: store.read(i.key) for i in store.list("")} == {"a": b"a1", "dir/b c": b"b1"}
    check = cli(*shlex.split(printed[2])[1:])  # nothing is left to do
    assert check.returncode == 0, check.stderr
