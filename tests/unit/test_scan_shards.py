"""Sharded orphan scans, the pure parts and the ranges on the public fakes: key ranges cut at
quantiles, scans of the ranges that add up to the scan of everything, and their merge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError, ReportMismatch
from gocdbackup.model.orphan_report import MemoryRows
from gocdbackup.model.scan_shards import KeyRange, key_ranges, merged
from gocdbackup.ops.orphans import scan_orphans
from gocdbackup.ops.scan_shards import plan_ranges
from gocdbackup.testing import FakeClock
from tests.unit.test_orphans_ops import World, art_key


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(max_size=5)), st.integers(1, 9), st.lists(st.text(max_size=5)))
def test_ranges_cover_every_key_once(sample: list[str], shards: int, keys: list[str]) -> None:
    ranges = key_ranges(sample, shards)
    assert 1 <= len(ranges) <= shards
    assert ranges[0].after == ""
    assert ranges[-1].until is None
    for key in keys:
        if key:  # keys are never empty
            assert sum(r.holds(key) for r in ranges) == 1


def test_ranges_share_the_sample_evenly() -> None:
    sample = [f"k{n:05}" for n in range(1000)]
    ranges = key_ranges(sample, 4)
    sizes = [sum(r.holds(k) for k in sample) for r in ranges]
    assert sizes == [251, 250, 250, 249]
    assert key_ranges([], 4) == [KeyRange()]
    with pytest.raises(ConfigError):
        key_ranges(sample, 0)


def _world(clock: FakeClock) -> World:
    w = World(clock)
    for n in range(60):
        key = art_key()
        if n % 7:
            w.row(key, data=w.obj(key))
        elif n % 2:
            w.obj(key)  # an orphan
        else:
            w.row(key, data=b"lost")  # a row without its object
    w.obj("zz/foreign.txt")
    clock.advance(timedelta(days=2))
    return w


def test_range_scans_merge_to_the_scan_of_everything(clock: FakeClock) -> None:
    w = _world(clock)
    whole = scan_orphans(w.db, w.store, ctx=w.ctx())
    ranges = plan_ranges(w.db, 3, ctx=w.ctx(), sample=20)
    assert len(ranges) == 3
    now = clock.now()
    parts = [scan_orphans(w.db, w.store, ctx=w.ctx(), key_range=r, now=now) for r in ranges]
    assert all(sum(p.counts.values()) for p in parts)  # every range holds keys
    report = merged(parts, scanned_at=now, spool=MemoryRows())
    assert dict(report.counts) == dict(whole.counts)
    assert dict(report.bytes) == dict(whole.bytes)
    assert report.store_objects == whole.store_objects
    assert [(r.key, r.cls) for r in report.rows()] == [(r.key, r.cls) for r in whole.rows()]
    # a range lists only its part of the store
    assert [after for _, after in w.store.scans[-3:]] == [r.after for r in ranges]


def test_parts_of_different_scans_are_not_merged(clock: FakeClock) -> None:
    w = _world(clock)
    now = clock.now()
    a = scan_orphans(w.db, w.store, ctx=OpContext(clock=clock), now=now)
    b = scan_orphans(w.db, w.store, ctx=OpContext(clock=clock), now=now + timedelta(hours=1))
    with pytest.raises(ReportMismatch, match="another scan"):
        merged([a, b], scanned_at=now, spool=MemoryRows())
    with pytest.raises(ConfigError):
        merged([], scanned_at=now, spool=MemoryRows())
