"""Orphan scans read from a bucket inventory (``--listing``): every format S3 Inventory and GCS
Storage Insights publish, written onto moto and the GCS emulator, classify a gocdnext bucket
exactly as a scan that lists the bucket; what the inventory cannot know is said, not guessed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gocdbackup import Reconciler
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.gocdnext_fixture import write_objects
from gocdbackup.errors import ConfigError, InventoryMismatch, NotFound, UnsupportedFormat
from tests.inventories import write_gcs_inventory, write_s3_inventory

from .conftest import GCS_OPTIONS, S3_KEY, S3_SECRET, EmulatorGcsStore, Server, unique_bucket

CLI = [sys.executable, "-m", "gocdbackup.cli"]
CASES = [("s3", "csv"), ("s3", "orc"), ("s3", "parquet"), ("gcs", "csv"), ("gcs", "parquet")]


def _bucket(provider: str, server: Server) -> tuple[FsspecStore, dict[str, Any], str]:
    bucket = unique_bucket()
    if provider == "s3":
        options: dict[str, Any] = {
            "endpoint_url": server.endpoint,
            "key": S3_KEY,
            "secret": S3_SECRET,
        }
        store: FsspecStore = FsspecStore(f"s3://{bucket}", options)
        store.fs.mkdir(bucket)
        return store, options, f"s3://{bucket}"
    store = EmulatorGcsStore(f"gs://{bucket}", GCS_OPTIONS)
    store.fs.mkdir(bucket)
    return store, dict(GCS_OPTIONS), f"gs://{bucket}"


def _orphan_key() -> str:
    return f"run/{uuid.uuid4()}/job/{uuid.uuid4()}/{uuid.uuid4()}"


def _populate(store: FsspecStore, db: str) -> dict[str, str]:
    """gocdnext's objects, two orphans, two foreign objects whose keys need URL-encoding, and
    one object lost (a row without its object)."""
    write_objects(db, store)
    lost = next(o.key for o in store.scan("run/"))  # one of gocdnext's, before the orphans
    store.delete(lost)
    extra = {"orphan": _orphan_key(), "orphan2": _orphan_key(), "lost": lost}
    extra["foreign"] = "notes/a report + plan ü.txt"
    extra["foreign2"] = 'notes/100%,done;"quoted".txt'
    for name, key in extra.items():
        if name != "lost":
            store.write(key, name.encode())
    time.sleep(1.1)  # write times have one-second resolution; grace 0s needs them past
    return extra


def _classes(report: Any) -> list[tuple[str, str]]:
    return [(r.key, r.cls.value) for r in report.rows()]


@pytest.mark.parametrize(("provider", "fmt"), CASES)
def test_inventory_scan_classifies_exactly_as_a_listing(
    provider: str, fmt: str, request: pytest.FixtureRequest, gocdnext_db: str
) -> None:
    server = request.getfixturevalue("moto_server" if provider == "s3" else "gcs_server")
    store, options, url = _bucket(provider, server)
    dest, _, _ = _bucket(provider, server)
    extra = _populate(store, gocdnext_db)
    listed = list(store.scan())
    taken = datetime.now(UTC).replace(microsecond=0)
    if provider == "s3":
        stale = [extra["lost"], extra["orphan"]]  # noncurrent versions and delete markers
        manifest = write_s3_inventory(
            dest, store.root, listed, fmt=fmt, taken_at=taken, stale=stale
        )
    else:
        manifest = write_gcs_inventory(dest, store.root, listed, fmt=fmt, taken_at=taken)

    rec = Reconciler(gocdnext_db, url, artifact_options=options)
    by_listing = rec.scan(grace="0s")
    by_inventory = rec.scan(grace="0s", listing=manifest)

    assert by_inventory.complete
    assert dict(by_inventory.counts) == dict(by_listing.counts)
    assert dict(by_inventory.bytes) == dict(by_listing.bytes)
    assert _classes(by_inventory) == _classes(by_listing)
    assert by_inventory.store_objects == by_listing.store_objects == len(listed)
    counts = by_inventory.counts
    assert counts["orphan_object"] == 2
    assert counts["foreign_object"] == 2
    assert counts["missing_object"] == 1
    assert counts["ok"] > 10
    assert by_inventory.listing == manifest
    assert by_inventory.listed_at == taken
    assert by_listing.listing == ""
    assert by_listing.listed_at is None


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False)


def test_cli_listing_rechecks_rows_and_leaves_newer_objects_unjudged(
    moto_server: Server, gocdnext_db: str, tmp_path: Any
) -> None:
    store, _, url = _bucket("s3", moto_server)
    dest, _, _ = _bucket("s3", moto_server)
    extra = _populate(store, gocdnext_db)
    manifest = write_s3_inventory(dest, store.root, list(store.scan()))
    # after the inventory: the lost object comes back, and a new orphan is written
    store.write(extra["lost"], b"written back")
    newer = _orphan_key()
    store.write(newer, b"new")
    time.sleep(1.1)
    where = ["--db", gocdnext_db, "--artifacts", url, "--artifacts-option"]
    where.append(f"endpoint_url={moto_server.endpoint}")
    scan = ["orphans", "scan", *where, "--grace", "0s"]

    listed = _cli("--json", *scan)
    assert listed.returncode == 0, listed.stderr
    out = tmp_path / "inventory.jsonl"
    done = _cli("--json", *scan, "--listing", manifest, "--out", str(out))
    assert done.returncode == 0, done.stderr
    by_listing, by_inventory = json.loads(listed.stdout), json.loads(done.stdout)

    # the row whose object the inventory lacks was looked up, and its object found: not missing
    assert by_inventory["counts"]["missing_object"] == 0
    # the orphan written after the inventory is not in it: one fewer, never judged on its word
    assert by_listing["counts"]["orphan_object"] == 3
    assert by_inventory["counts"]["orphan_object"] == 2
    assert by_inventory["listing"] == manifest
    assert datetime.fromisoformat(by_inventory["listed_at"]) < datetime.now(UTC)
    with out.open() as f:
        head = json.loads(f.readline())
    assert head["listing"] == manifest

    sharded = _cli("--json", *scan, "--listing", manifest, "--shards", "3")
    assert sharded.returncode == 0, sharded.stderr
    merged = json.loads(sharded.stdout)
    assert merged["counts"] == by_inventory["counts"]
    assert merged["listing"] == manifest
    sharded_list = _cli("--json", *scan, "--shards", "2")
    assert sharded_list.returncode == 0, sharded_list.stderr
    assert json.loads(sharded_list.stdout)["counts"] == by_listing["counts"]

    human = _cli(*scan, "--listing", manifest)
    assert human.returncode == 0, human.stderr
    assert "objects written later without a row are not in it" in " ".join(human.stdout.split())


def test_inventory_refusals_change_nothing(
    moto_server: Server, gocdnext_db: str, tmp_path: Any
) -> None:
    store, options, url = _bucket("s3", moto_server)
    other, _, _ = _bucket("s3", moto_server)
    dest, _, _ = _bucket("s3", moto_server)
    write_objects(gocdnext_db, store)
    listed = list(store.scan())
    rec = Reconciler(gocdnext_db, url, artifact_options=options)

    of_other = write_s3_inventory(dest, other.root, listed)
    with pytest.raises(InventoryMismatch, match="lists bucket"):
        rec.scan(listing=of_other)
    missing = of_other.rsplit("/", 2)[0] + "/2001-01-01T00-00Z/manifest.json"
    with pytest.raises(NotFound, match="no inventory manifest"):
        rec.scan(listing=missing)
    dest.write("not-a-manifest.json", b'{"hello": 1}')
    with pytest.raises(UnsupportedFormat, match="neither"):
        rec.scan(listing=f"{dest.root}/not-a-manifest.json".join(["s3://", ""]))
    no_size = write_s3_inventory(
        dest, store.root, listed, schema="Bucket, Key, LastModifiedDate", seed=3
    )
    with pytest.raises(ConfigError, match="size"):
        rec.scan(listing=no_size)
    later = datetime.now(UTC) + timedelta(days=1)
    future = write_s3_inventory(dest, store.root, listed, taken_at=later)
    with pytest.raises(InventoryMismatch, match="future"):
        rec.scan(listing=future)

    local = tmp_path / "artifacts"
    local.mkdir()
    good = write_s3_inventory(dest, store.root, listed)
    done = _cli(
        "--json", "orphans", "scan", "--db", gocdnext_db, "--artifacts", f"file://{local}",
        "--grace", "0s", "--listing", good,
    )  # fmt: skip
    assert done.returncode != 0
    assert json.loads(done.stdout)["error"]["code"] == "config"
    assert "not a bucket" in json.loads(done.stdout)["error"]["message"]
    mismatch = _cli(
        "--json", "orphans", "scan", "--db", gocdnext_db, "--artifacts", url,
        "--artifacts-option", f"endpoint_url={moto_server.endpoint}", "--listing", of_other,
    )  # fmt: skip
    assert mismatch.returncode != 0
    assert json.loads(mismatch.stdout)["error"]["code"] == "inventory_mismatch"
    assert list(store.scan()) == listed  # nothing was changed


def test_backup_finds_its_objects_in_the_inventory(
    moto_server: Server, gocdnext_db: str, tmp_path: Any
) -> None:
    from tests.conftest import REPO_PASSWORD

    store, _, url = _bucket("s3", moto_server)
    dest, _, _ = _bucket("s3", moto_server)
    written = write_objects(gocdnext_db, store)
    late = next(o.key for o in store.scan("run/"))
    data = store.read(late)
    store.delete(late)
    manifest = write_s3_inventory(dest, store.root, list(store.scan()))
    store.write(late, data)  # written after the inventory: looked up, not taken as missing
    env = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD}
    env.update(AWS_ACCESS_KEY_ID=S3_KEY, AWS_SECRET_ACCESS_KEY=S3_SECRET)
    repo = f"file://{tmp_path}/repo"
    subprocess.run([*CLI, "init", "--repo", repo], env=env, check=True, capture_output=True)
    where = ["--db", gocdnext_db, "--artifacts", url, "--artifacts-option"]
    where.append(f"endpoint_url={moto_server.endpoint}")

    def backup(*extra: str) -> Any:
        done = subprocess.run(
            [*CLI, "--json", "backup", "--repo", repo, *where, *extra],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    first = backup("--listing", manifest)
    assert first["artifacts"]["copied"] == written
    assert first["artifacts"].get("missing", 0) == 0
    again = backup("--listing", manifest)  # nightly: everything reused, nothing copied
    assert again["artifacts"]["copied"] == 0
    verified = subprocess.run(
        [*CLI, "--json", "verify", "--repo", repo, "--read-data", "100"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    sharded = subprocess.run(
        [*CLI, "backup", "--repo", repo, *where, "--listing", manifest, "--shards", "2"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert sharded.returncode == 2
    assert "one process" in sharded.stderr
