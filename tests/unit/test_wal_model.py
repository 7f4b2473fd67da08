"""WAL names, segment numbers and the gap check, as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gocdbackup.errors import ConfigError
from gocdbackup.model.wal import (
    check_archive,
    check_wal_name,
    lsn_segment,
    prunable,
    segment_name,
    segment_number,
)


@pytest.mark.parametrize(
    "name",
    [
        "000000010000000000000001",
        "0000000200000001000000FF",
        "000000010000000000000002.partial",
        "000000010000000000000002.00000028.backup",
        "00000002.history",
    ],
)
def test_names_postgresql_archives_are_taken(name: str) -> None:
    assert check_wal_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "pg_wal/000000010000000000000001", "00000001000000000000001", "x.history", "../a"]
)
def test_other_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="not the name of a WAL file"):
        check_wal_name(name)


@given(st.integers(1, 2**31), st.integers(0, 2**40 - 1))
def test_segment_names_round_trip(timeline: int, number: int) -> None:
    assert segment_number(segment_name(timeline, number)) == (timeline, number)


def test_the_segment_after_0xff_crosses_into_the_next_4_gib() -> None:
    assert segment_name(1, segment_number("0000000100000000000000FF")[1] + 1) == (
        "000000010000000100000000"
    )


@given(st.integers(1, 300), st.sets(st.integers(1, 298), max_size=20), st.integers(1, 3))
def test_every_removed_segment_is_a_gap(count: int, removed: set[int], timeline: int) -> None:
    kept = [n for n in range(count) if n not in removed or n == count - 1]
    names = [segment_name(timeline, n) for n in kept]
    names += ["00000002.history", segment_name(timeline, 0) + ".partial"]
    report = check_archive(names)
    missing = {n for n in removed if n < count - 1}
    assert sum(g.missing for g in report.gaps) == len(missing)
    assert report.ok == (not missing)
    for gap in report.gaps:
        first = segment_number(gap.first)[1]
        assert set(range(first, first + gap.missing)) <= missing
    assert report.timelines[0].segments == len(kept)


def test_timelines_are_checked_apart() -> None:
    names = [segment_name(1, n) for n in (1, 2, 3)] + [segment_name(2, n) for n in (3, 5)]
    report = check_archive(names)
    assert [str(g) for g in report.gaps] == [f"timeline 2: segment {segment_name(2, 4)} is missing"]
    assert [t.timeline for t in report.timelines] == [1, 2]
    assert report.summary()["ok"] is False


def test_lsn_to_segment() -> None:
    assert lsn_segment("0/2000120") == 2
    assert lsn_segment("1/0") == 256
    assert lsn_segment("0/FFFFFF") == 0


@given(st.integers(1, 3), st.integers(0, 600), st.integers(0, 600))
def test_pruning_keeps_every_segment_from_the_oldest_backup_on(
    timeline: int, count: int, keep_from: int
) -> None:
    names = [segment_name(timeline, n) for n in range(count)]
    names += ["00000002.history", f"{segment_name(timeline, 3)}.00000028.backup"]
    names += [f"{segment_name(timeline, 5)}.partial"]
    doomed = set(prunable(names, keep_from))
    for name in names:
        if name.endswith(".history"):
            assert name not in doomed
            continue
        number = segment_number(name[:24])[1]
        assert (name in doomed) == (number < keep_from)
