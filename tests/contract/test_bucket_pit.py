"""A real versioned bucket rolled to a point in time and audited: moto in server mode (S3
versions, delete markers, CopyObject, DeleteObjects, the bucket's settings) and the GCS
emulator (generations and bucket metadata; it keeps no noncurrent generations, so only what
it has is tested here)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from gocdbackup.context import OpContext
from gocdbackup.drivers.bucket_versions import S3Versions, open_versioned
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.gcs_versions import GcsVersions
from gocdbackup.errors import StoreNotFound, VersioningOff
from gocdbackup.model.store_audit import audit_findings
from gocdbackup.ops.bucket_pit import apply_store_rollback, plan_store_rollback

from .conftest import GCS_OPTIONS, S3_KEY, S3_SECRET, EmulatorGcsStore, Server, unique_bucket


def next_second() -> None:
    """Sleep past the next whole second: S3 listings may stamp versions to the second, so an
    instant taken between two batches must not share a second with either."""
    now = time.time()
    time.sleep(1.05 - (now % 1))


def _s3(
    server: Server, bucket: str, *, versioned: bool = True, prefix: str = ""
) -> tuple[FsspecStore, S3Versions]:
    options: dict[str, Any] = {"endpoint_url": server.endpoint, "key": S3_KEY, "secret": S3_SECRET}
    store = FsspecStore(f"s3://{bucket}", {**options, "version_aware": True})
    store.fs.mkdir(bucket)
    if versioned:
        store.fs.call_s3(
            "put_bucket_versioning", Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )
    url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    versions = open_versioned(url, options, transfers=8)
    assert isinstance(versions, S3Versions)
    return store, versions


def _contents(store: FsspecStore, prefix: str = "") -> dict[str, bytes]:
    return {i.key: store.read(i.key) for i in store.list(prefix)}


def _history(store: FsspecStore, prefix: str = "") -> list[datetime]:
    """Three batches of writes, overwrites and deletes; an instant after each."""
    p = prefix
    instants = []
    for key in "abcd":
        store.write(f"{p}{key}", f"{key}1".encode())
    next_second()
    instants.append(datetime.now(UTC))
    next_second()
    store.write(f"{p}a", b"a2")
    store.delete(f"{p}b")
    store.write(f"{p}e", b"e1")
    next_second()
    instants.append(datetime.now(UTC))
    next_second()
    store.write(f"{p}b", b"b2")  # written again after a delete
    store.delete(f"{p}c")
    store.write(f"{p}a", b"a3")
    store.write(f"{p}f", b"f1")
    next_second()
    instants.append(datetime.now(UTC))
    next_second()  # what the rollbacks write must not share the last instant's second
    return instants


def test_s3_bucket_with_overwrites_and_deletes_rolls_to_three_instants(moto_server: Server) -> None:
    bucket = unique_bucket()
    store, versions = _s3(moto_server, bucket)
    t1, t2, t3 = _history(store)
    expected = {
        t1: {"a": b"a1", "b": b"b1", "c": b"c1", "d": b"d1"},
        t2: {"a": b"a2", "c": b"c1", "d": b"d1", "e": b"e1"},
        t3: {"a": b"a3", "b": b"b2", "d": b"d1", "e": b"e1", "f": b"f1"},
    }
    ctx = OpContext()
    for at in (t1, t2, t3, t1):
        plan = plan_store_rollback(versions, at, ctx=ctx)
        result = apply_store_rollback(versions, plan.at, confirm=plan.id, ctx=ctx)
        assert result.ok, result.failed
        assert _contents(store) == expected[at]
        assert not plan_store_rollback(versions, at, ctx=ctx).work()  # done, and stays done
    # the rollbacks themselves are history: the newest state is still there to go back to
    after = datetime.now(UTC)
    assert plan_store_rollback(versions, after, ctx=ctx).counts()["restore"] == 0


def test_s3_prefix_rolls_only_its_keys_and_into_another_bucket(moto_server: Server) -> None:
    bucket = unique_bucket()
    store, versions = _s3(moto_server, bucket, prefix="arts")
    store.write("other/x", b"untouched")
    t1, _, _ = _history(store, "arts/")
    store.write("other/x", b"changed")
    ctx = OpContext()
    target = unique_bucket()
    target_store, into = _s3(moto_server, target, versioned=False)
    plan = plan_store_rollback(versions, t1, ctx=ctx, into=into)
    assert plan.counts() == {"copy": 4, "unchanged": 0}
    assert apply_store_rollback(versions, plan.at, confirm=plan.id, ctx=ctx, into=into).ok
    assert _contents(target_store) == {"a": b"a1", "b": b"b1", "c": b"c1", "d": b"d1"}
    assert _contents(store, "arts/")["arts/a"] == b"a3"  # the source is not touched
    again = plan_store_rollback(versions, t1, ctx=ctx, into=into)
    assert again.id == plan.id
    assert again.counts() == {"copy": 0, "unchanged": 4}
    in_place = plan_store_rollback(versions, t1, ctx=ctx)
    assert apply_store_rollback(versions, in_place.at, confirm=in_place.id, ctx=ctx).ok
    assert store.read("other/x") == b"changed"  # outside the prefix


def test_s3_audit_of_a_bare_and_of_a_configured_bucket(moto_server: Server) -> None:
    bare = unique_bucket()
    _, versions = _s3(moto_server, bare, versioned=False)
    findings = {f.check: f for f in audit_findings(versions.settings())}
    assert {c for c, f in findings.items() if not f.ok} == {
        "versioning",
        "lifecycle",
        "replication",
        "object_lock",
        "encryption",
        "public_access",
    }
    assert f"--bucket {bare}" in findings["versioning"].advice
    with pytest.raises(VersioningOff):
        plan_store_rollback(versions, datetime.now(UTC), ctx=OpContext())

    good = unique_bucket()
    store, versions = _s3(moto_server, good)
    s3 = store.fs
    s3.call_s3(
        "put_bucket_lifecycle_configuration",
        Bucket=good,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "noncurrent",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 35},
                }
            ]
        },
    )
    s3.call_s3(
        "put_bucket_encryption",
        Bucket=good,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.call_s3(
        "put_public_access_block",
        Bucket=good,
        PublicAccessBlockConfiguration=dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
            True,
        ),
    )
    settings = versions.settings()
    assert settings.noncurrent_expiry_days == 35
    assert settings.encryption == "AES256"
    findings = {f.check: f for f in audit_findings(settings, keep_days=30)}
    assert {c for c, f in findings.items() if not f.ok} == {"replication", "object_lock"}
    assert "lifecycle" in {f.check for f in audit_findings(settings, keep_days=40) if not f.ok}


def test_s3_missing_bucket_is_named(moto_server: Server) -> None:
    options = {"endpoint_url": moto_server.endpoint, "key": S3_KEY, "secret": S3_SECRET}
    versions = open_versioned(f"s3://{unique_bucket()}", options)
    with pytest.raises(StoreNotFound, match="does not exist"):
        versions.settings()
    with pytest.raises(StoreNotFound):
        list(versions.versions())


def test_gcs_generations_settings_and_a_rollback_of_new_keys(gcs_server: Server) -> None:
    bucket = unique_bucket()
    store = EmulatorGcsStore(f"gs://{bucket}", GCS_OPTIONS)
    store.fs.mkdir(bucket)
    versions = GcsVersions(store, transfers=2)
    settings = versions.settings()
    assert settings.versioning == "off"
    findings = {f.check: f for f in audit_findings(settings)}
    assert not findings["versioning"].ok
    assert "--versioning" in findings["versioning"].advice
    assert findings["encryption"].ok  # Google-managed keys, always
    with pytest.raises(VersioningOff):
        plan_store_rollback(versions, datetime.now(UTC), ctx=OpContext())
    store.fs.call("PATCH", "b/{}", bucket, json={"versioning": {"enabled": True}}, json_out=True)
    assert versions.settings().versioning == "enabled"
    store.write("a", b"a1")
    store.write("b", b"b1")
    next_second()
    at = datetime.now(UTC)
    next_second()
    store.write("c", b"c1")
    plan = plan_store_rollback(versions, at, ctx=OpContext())
    assert plan.counts() == {"restore": 0, "delete": 1, "unchanged": 2}
    assert apply_store_rollback(versions, plan.at, confirm=plan.id, ctx=OpContext()).ok
    assert sorted(i.key for i in store.list("")) == ["a", "b"]


def test_a_filesystem_store_has_no_versions(tmp_path: Any) -> None:
    versions = open_versioned(str(tmp_path))
    settings = versions.settings()
    assert settings.provider == "file"
    with pytest.raises(VersioningOff, match="filesystem store"):
        plan_store_rollback(versions, datetime.now(UTC), ctx=OpContext())
