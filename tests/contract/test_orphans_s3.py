"""Orphan reconciliation on S3 (moto server) with a real gocdnext database, through the CLI:
more than one listing page, quarantine and undo in the bucket, and a store that denies access."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gocdbackup import load_report, plan_cleanup
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.gocdnext_fixture import write_objects

from .conftest import S3_KEY, S3_SECRET, Server, unique_bucket
from .faulty_proxy import FaultyProxy

CLI = [sys.executable, "-m", "gocdbackup.cli"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False)


def as_json(*args: str) -> Any:
    done = cli("--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_scan_pages_through_a_bucket_of_many_objects(moto_server: Server, gocdnext_db: str) -> None:
    bucket = unique_bucket()
    store = FsspecStore(
        f"s3://{bucket}", {"endpoint_url": moto_server.endpoint, "key": S3_KEY, "secret": S3_SECRET}
    )
    store.fs.mkdir(bucket)
    referenced = write_objects(gocdnext_db, store)
    orphans = [f"run/{uuid.uuid4()}/job/{uuid.uuid4()}/{uuid.uuid4()}" for _ in range(1100)]
    with ThreadPoolExecutor(16) as pool:  # more than one page of 1,000 keys
        list(pool.map(lambda k: store.write(k, k.encode()), orphans))
    time.sleep(1.1)  # S3 write times have one-second resolution; grace 0s needs them past
    where = [
        "--artifacts",
        f"s3://{bucket}",
        "--artifacts-option",
        f"endpoint_url={moto_server.endpoint}",
    ]
    report = as_json("orphans", "scan", "--db", gocdnext_db, *where, "--grace", "0s")
    assert report["counts"]["orphan_object"] == len(orphans)
    assert report["counts"]["ok"] == referenced
    assert report["store"] == f"s3://{bucket}"


def test_scan_clean_undo_round_trip_on_s3(
    moto_server: Server, gocdnext_db: str, tmp_path: Any
) -> None:
    bucket = unique_bucket()
    options = {"endpoint_url": moto_server.endpoint, "key": S3_KEY, "secret": S3_SECRET}
    store = FsspecStore(f"s3://{bucket}", options)
    store.fs.mkdir(bucket)
    write_objects(gocdnext_db, store)
    orphans = {
        f"run/{uuid.uuid4()}/job/{uuid.uuid4()}/{uuid.uuid4()}": os.urandom(3000) for _ in range(5)
    }
    for key, data in orphans.items():
        store.write(key, data)
    time.sleep(1.1)
    where = [
        "--artifacts",
        f"s3://{bucket}",
        "--artifacts-option",
        f"endpoint_url={moto_server.endpoint}",
    ]
    out = tmp_path / "report.json"
    report = as_json(
        "orphans", "scan", "--db", gocdnext_db, *where, "--grace", "0s", "--out", str(out)
    )
    done = as_json(
        "orphans",
        "clean",
        "--report",
        str(out),
        "--db",
        gocdnext_db,
        *where,
        "--confirm",
        plan_cleanup(load_report(out)).id,
    )
    assert report["store_objects"] > 0
    assert done["done"]["orphan_object"] == 5
    fresh = FsspecStore(f"s3://{bucket}", options)
    assert not any(fresh.exists(k) for k in orphans)
    as_json("orphans", "undo", done["id"], *where)
    fresh = FsspecStore(f"s3://{bucket}", options)
    assert {k: fresh.read(k) for k in orphans} == orphans
    assert [i.key for i in fresh.list(".gocdbackup-quarantine/")] == []


def test_access_denied_is_a_clear_error(faulty_proxy: FaultyProxy, gocdnext_db: str) -> None:
    bucket = unique_bucket()
    FsspecStore(
        f"s3://{bucket}",
        {"endpoint_url": faulty_proxy.endpoint, "key": S3_KEY, "secret": S3_SECRET},
    ).fs.mkdir(bucket)
    faulty_proxy.max_requests = 0  # from now on every request is answered 403 Forbidden
    denied = cli(
        "orphans",
        "scan",
        "--db",
        gocdnext_db,
        "--artifacts",
        f"s3://{bucket}",
        "--artifacts-option",
        f"endpoint_url={faulty_proxy.endpoint}",
    )
    assert denied.returncode == 1
    assert "error:" in denied.stderr
    assert "Traceback" not in denied.stderr
    assert S3_SECRET not in denied.stderr + denied.stdout
