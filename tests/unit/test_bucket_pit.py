"""Rolling a versioned bucket to a point in time, on the in-memory fake: any history of
writes, overwrites and deletes is rolled to any instant exactly, in place or into another
bucket; a plan's id survives a half-done run and changes when the bucket does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError, ConfirmationMismatch, PreconditionFailed, VersioningOff
from gocdbackup.model.bucket_versions import ObjectVersion, PitAction, key_histories, live_at
from gocdbackup.model.store_audit import BucketSettings, audit_findings
from gocdbackup.ops.bucket_pit import apply_store_rollback, plan_store_rollback
from gocdbackup.testing import FakeClock, FakeVersionedBucket

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

# (op, key index, content) at one-second steps; op "w" writes, "d" deletes
events = st.lists(
    st.tuples(st.sampled_from("wwd"), st.integers(0, 5), st.binary(min_size=0, max_size=3)),
    min_size=1,
    max_size=40,
)


def _bucket(history: list[tuple[str, int, bytes]]) -> tuple[FakeVersionedBucket, FakeClock]:
    clock = FakeClock(START, step=timedelta(0))
    bucket = FakeVersionedBucket(clock=clock, noncurrent_expiry_days=None)
    for op, k, data in history:
        clock.advance(timedelta(seconds=1))
        if op == "w":
            bucket.write(f"k/{k}", data)
        else:
            bucket.remove(f"k/{k}")
    clock.current = START + timedelta(seconds=60)  # after every instant the tests roll to
    return bucket, clock


@settings(max_examples=150, deadline=None)
@given(history=events, points=st.lists(st.integers(-1, 42), min_size=3, max_size=3))
def test_any_history_rolls_to_three_instants_exactly(
    history: list[tuple[str, int, bytes]], points: list[int]
) -> None:
    bucket, clock = _bucket(history)
    for p in points:
        at = START + timedelta(seconds=p, milliseconds=500)
        wanted = bucket.objects(at)
        ctx = OpContext(clock=clock)
        plan = plan_store_rollback(bucket, at, ctx=ctx)
        result = apply_store_rollback(bucket, plan.at, confirm=plan.id, ctx=ctx)
        assert result.ok
        clock.advance(timedelta(seconds=1))
        assert bucket.objects() == wanted
        again = plan_store_rollback(bucket, at, ctx=ctx)
        assert again.id == plan.id
        assert not again.work()  # nothing left to do


@settings(max_examples=100, deadline=None)
@given(history=events, point=st.integers(-1, 42))
def test_into_another_bucket_copies_what_was_live(
    history: list[tuple[str, int, bytes]], point: int
) -> None:
    bucket, clock = _bucket(history)
    other = FakeVersionedBucket("memory://other", clock=clock)
    at = START + timedelta(seconds=point, milliseconds=500)
    before = bucket.objects()
    ctx = OpContext(clock=clock)
    plan = plan_store_rollback(bucket, at, ctx=ctx, into=other)
    assert apply_store_rollback(bucket, plan.at, confirm=plan.id, ctx=ctx, into=other).ok
    assert other.objects() == bucket.objects(at)
    assert bucket.objects() == before  # the source is not touched
    again = plan_store_rollback(bucket, at, ctx=ctx, into=other)
    assert again.id == plan.id
    assert not again.work()


def _three_keys() -> tuple[FakeVersionedBucket, FakeClock, datetime]:
    bucket, clock = _bucket([("w", 0, b"a1"), ("w", 1, b"b1"), ("w", 2, b"c1")])
    at = START + timedelta(seconds=5)
    clock.advance(timedelta(seconds=1))
    bucket.write("k/0", b"a2")  # overwritten after T
    bucket.remove("k/1")  # deleted after T
    bucket.write("k/3", b"d1")  # created after T
    clock.advance(timedelta(seconds=1))
    return bucket, clock, at


def test_a_failed_step_is_reported_and_a_second_run_resumes() -> None:
    bucket, clock, at = _three_keys()
    ctx = OpContext(clock=clock)
    plan = plan_store_rollback(bucket, at, ctx=ctx)
    assert plan.counts() == {"restore": 2, "delete": 1, "unchanged": 1}
    bucket.fail["k/0"] = "SlowDown"
    result = apply_store_rollback(bucket, plan.at, confirm=plan.id, ctx=ctx)
    assert not result.ok
    assert result.failed == {"k/0": "SlowDown"}
    assert result.done == {"restore": 1, "delete": 1}
    del bucket.fail["k/0"]
    rest = apply_store_rollback(bucket, plan.at, confirm=plan.id, ctx=ctx)  # the same id
    assert rest.ok
    assert rest.done == {"restore": 1, "delete": 0}
    assert bucket.objects() == {"k/0": b"a1", "k/1": b"b1", "k/2": b"c1"}


def test_a_wrong_or_stale_confirmation_changes_nothing() -> None:
    bucket, clock, at = _three_keys()
    ctx = OpContext(clock=clock)
    plan = plan_store_rollback(bucket, at, ctx=ctx)
    before = bucket.objects()
    with pytest.raises(ConfirmationMismatch):
        apply_store_rollback(bucket, plan.at, confirm="pit-0000", ctx=ctx)
    bucket.write("k/9", b"new")  # the bucket changes after the plan
    with pytest.raises(ConfirmationMismatch, match="changed since the plan"):
        apply_store_rollback(bucket, plan.at, confirm=plan.id, ctx=ctx)
    assert bucket.objects() == {**before, "k/9": b"new"}


def test_bad_times_and_unversioned_buckets_are_refused() -> None:
    bucket, clock, at = _three_keys()
    ctx = OpContext(clock=clock)
    with pytest.raises(ConfigError, match="in the future"):
        plan_store_rollback(bucket, clock.now() + timedelta(hours=1), ctx=ctx)
    with pytest.raises(ConfigError, match="no time zone"):
        plan_store_rollback(bucket, at.replace(tzinfo=None), ctx=ctx)
    bucket.noncurrent_expiry_days = 30
    with pytest.raises(PreconditionFailed, match="30 day"):
        plan_store_rollback(bucket, at - timedelta(days=31), ctx=ctx)
    bucket.versioning = "off"
    with pytest.raises(VersioningOff, match="versioning is off"):
        plan_store_rollback(bucket, at, ctx=ctx)


def test_versions_written_in_the_same_instant_keep_the_listing_order() -> None:
    t = START
    listing = [
        ObjectVersion(key="a", version="2", written_at=t, deleted=True, latest=True),
        ObjectVersion(key="a", version="1", written_at=t),
        ObjectVersion(key="b", version="3", written_at=t + timedelta(seconds=1), latest=True),
        ObjectVersion(key="b", version="2", written_at=t),
    ]
    histories = list(key_histories(listing))
    assert [[v.version for v in h] for h in histories] == [["2", "1"], ["3", "2"]]
    assert live_at(histories[0], t) is None  # deleted in the same second it was written
    got = live_at(histories[1], t)
    assert got is not None
    assert got.version == "2"
    assert PitAction("restore") is PitAction.RESTORE


def test_audit_findings_name_every_shortfall_with_advice() -> None:
    bare = BucketSettings(provider="s3", bucket="arts", versioning="off", lifecycle_rules=0)
    findings = {f.check: f for f in audit_findings(bare, keep_days=30)}
    assert not findings["versioning"].ok
    assert "put-bucket-versioning --bucket arts" in findings["versioning"].advice
    assert not findings["lifecycle"].ok
    assert "30 days" in findings["lifecycle"].advice
    assert not findings["encryption"].ok
    short = BucketSettings(
        provider="gcs",
        bucket="arts",
        versioning="enabled",
        lifecycle_rules=1,
        noncurrent_expiry_days=7,
        replication=True,
        object_lock=True,
        encryption="google-managed",
        public_access_blocked=True,
    )
    findings = {f.check: f for f in audit_findings(short, keep_days=30)}
    assert [c for c, f in findings.items() if not f.ok] == ["lifecycle"]
    assert "7 day(s)" in findings["lifecycle"].detail
    unread = BucketSettings(
        provider="s3",
        bucket="arts",
        versioning="enabled",
        unreadable=(("replication", "AccessDenied"),),
    )
    findings = {f.check: f for f in audit_findings(unread)}
    assert findings["replication"].detail == "could not be read (AccessDenied)"
    local = {
        f.check: f
        for f in audit_findings(BucketSettings(provider="file", bucket="/x", versioning="off"))
    }
    assert not local["versioning"].ok
    assert "snapshot" in local["versioning"].advice
    assert all(f.ok for c, f in local.items() if c != "versioning")
