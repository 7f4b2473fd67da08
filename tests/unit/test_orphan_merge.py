"""The pure core of orphan reconciliation: every key in exactly one class, by a streaming merge
of two sorted streams (Hypothesis-checked against a plain set-based oracle)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gocdbackup import load_report, save_report, write_report_csv
from gocdbackup.drivers.report_files import TempFileRows
from gocdbackup.errors import OutOfOrder
from gocdbackup.model.cleanup import plan_cleanup
from gocdbackup.model.orphan_report import OrphanReport, ScanSource
from gocdbackup.model.orphans import OrphanClass, RowRef, ScanRules, Tally, classify
from gocdbackup.ports import ObjectInfo

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=3)
RULES = ScanRules(now=NOW, grace=timedelta(hours=6), partial_uploads=True)
U = "11111111-2222-4333-8444-555555555555"
ART = f"run/{U}/job/{U}/{U}"
CACHE = f"cache/{U}/" + "a" * 64
LOG = f"logs/{U}.log.gz"


def row(
    key: str, status: str = "ready", *, at: datetime = OLD, size: int | None = 10, **kw: str
) -> RowRef:
    table = {"run": "artifacts", "cac": "caches", "log": "job_runs"}.get(key[:3], "artifacts")
    return RowRef(
        key=key, table=table, row_id="r", status=status, size_bytes=size, stamped_at=at, **kw
    )


def obj(key: str, size: int = 10, at: datetime | None = OLD) -> ObjectInfo:
    return ObjectInfo(key=key, size_bytes=size, modified_at=at)


def one(rows: list[RowRef], objects: list[ObjectInfo], rules: ScanRules = RULES) -> OrphanClass:
    tally = Tally()
    out = list(classify(rows, objects, rules, tally))
    assert tally.total == 1
    return out[0].cls if out else OrphanClass.OK


@pytest.mark.parametrize(
    ("rows", "objects", "expected"),
    [
        ([row(ART)], [obj(ART)], OrphanClass.OK),
        ([row(ART)], [], OrphanClass.MISSING_OBJECT),
        ([row(LOG, size=None)], [], OrphanClass.MISSING_OBJECT),
        ([row(ART, "deleting")], [], OrphanClass.DELETING_LEFTOVER),
        ([row(ART, "deleting")], [obj(ART)], OrphanClass.OK),
        ([row(ART, "pending")], [], OrphanClass.PENDING_STALE),
        ([row(CACHE, "pending")], [obj(CACHE)], OrphanClass.PENDING_STALE),
        ([row(ART, "pending", at=NOW - timedelta(minutes=2))], [], OrphanClass.TOO_RECENT),
        ([row(ART, at=NOW - timedelta(hours=1))], [], OrphanClass.TOO_RECENT),
        ([row(ART)], [obj(ART, at=NOW - timedelta(hours=1))], OrphanClass.TOO_RECENT),
        ([row(ART, size=11)], [obj(ART)], OrphanClass.SIZE_MISMATCH),
        ([row(LOG, size=None)], [obj(LOG, size=999)], OrphanClass.OK),
        ([], [obj(ART)], OrphanClass.ORPHAN_OBJECT),
        ([], [obj(CACHE)], OrphanClass.ORPHAN_OBJECT),
        ([], [obj(LOG)], OrphanClass.ORPHAN_OBJECT),
        ([], [obj("backups/dump.sql")], OrphanClass.FOREIGN_OBJECT),
        ([], [obj(f"run/{U}/job/{U}/../../etc")], OrphanClass.FOREIGN_OBJECT),
        ([], [obj(ART + ".part")], OrphanClass.PARTIAL_UPLOAD),
        ([], [obj(ART, at=NOW)], OrphanClass.TOO_RECENT),
        ([], [obj(ART, at=None)], OrphanClass.TOO_RECENT),  # unknown age: never acted on
    ],
)
def test_each_class(rows: list[RowRef], objects: list[ObjectInfo], expected: OrphanClass) -> None:
    assert one(rows, objects) is expected


def test_part_files_are_foreign_outside_the_filesystem_backend() -> None:
    rules = ScanRules(now=NOW, partial_uploads=False)
    assert one([], [obj(ART + ".part")], rules) is OrphanClass.FOREIGN_OBJECT


def test_sha_mismatch_only_where_content_is_verified() -> None:
    r = row(ART, sha256="ab" * 32)
    tally = Tally()
    out = list(classify([r], [obj(ART)], RULES, tally, verify=lambda _r, _o: False))
    assert [o.cls for o in out] == [OrphanClass.SHA_MISMATCH]
    assert list(classify([r], [obj(ART)], RULES, Tally(), verify=lambda _r, _o: None)) == []


def test_out_of_order_streams_stop_the_scan() -> None:
    with pytest.raises(OutOfOrder, match="store listing"):
        list(classify([], [obj("b"), obj("a")], RULES, Tally()))
    with pytest.raises(OutOfOrder, match="database"):
        list(classify([row("b"), row("a")], [], RULES, Tally()))


def test_rows_sharing_a_key_count_once_and_the_liveliest_speaks() -> None:
    tally = Tally()
    rows = [row(CACHE, "deleting"), row(CACHE, "ready")]
    assert next(iter(classify(rows, [], RULES, tally))).cls is OrphanClass.MISSING_OBJECT
    assert tally.total == 1


# -- the oracle ------------------------------------------------------------------------------

KEYS = st.sampled_from(
    [ART, CACHE, LOG, "a", "a-b", "a/b", "é/ü", "z" * 300, ART + ".part", f"cache/{U}/x"]
)
STATUSES = st.sampled_from(["ready", "pending", "deleting"])
AGES = st.sampled_from([timedelta(minutes=1), timedelta(hours=2), timedelta(days=2)])


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[RowRef], list[ObjectInfo]]:
    row_keys = draw(st.lists(KEYS, unique=True))
    obj_keys = draw(st.lists(KEYS, unique=True))
    rows = [
        row(k, draw(STATUSES), at=NOW - draw(AGES), size=draw(st.sampled_from([10, 11, None])))
        for k in sorted(row_keys)
    ]
    objects = [obj(k, draw(st.sampled_from([10, 11])), NOW - draw(AGES)) for k in sorted(obj_keys)]
    return rows, objects


@given(worlds(), st.sampled_from([timedelta(0), timedelta(hours=1), timedelta(hours=6)]))
@settings(max_examples=300, deadline=None)
def test_every_key_lands_in_exactly_one_class(
    world: tuple[list[RowRef], list[ObjectInfo]], grace: timedelta
) -> None:
    rows, objects = world
    rules = ScanRules(now=NOW, grace=grace, partial_uploads=True, keep_ok=True)
    tally = Tally()
    out = list(classify(rows, objects, rules, tally))
    keys = [o.key for o in out]
    assert keys == sorted({r.key for r in rows} | {o.key for o in objects})  # each once, in order
    assert tally.total == len(out)
    assert sum(tally.counts.values()) == len(out)
    cutoff = NOW - grace
    by_key_row = {r.key: r for r in rows}
    by_key_obj = {o.key: o for o in objects}
    for o in out:
        r, b = by_key_row.get(o.key), by_key_obj.get(o.key)
        side = o.cls.side
        if o.cls is OrphanClass.PENDING_STALE:  # a pending row, with or without its object
            assert r is not None
            assert r.status == "pending"
        else:
            assert side == "either" or side == ("both" if r and b else "row" if r else "object")
        # nothing newer than the grace window is ever offered for action
        if o.cls in (
            OrphanClass.ORPHAN_OBJECT,
            OrphanClass.PARTIAL_UPLOAD,
            OrphanClass.FOREIGN_OBJECT,
        ):
            assert b is not None
            assert b.modified_at is not None
            assert b.modified_at <= cutoff
            assert r is None  # a referenced object is never an orphan
        if o.cls in (OrphanClass.MISSING_OBJECT, OrphanClass.DELETING_LEFTOVER):
            assert r is not None
            assert b is None
            assert r.stamped_at is not None
            assert r.stamped_at <= cutoff


@given(worlds())
@settings(max_examples=100, deadline=None)
def test_a_resumed_merge_equals_one_pass(world: tuple[list[RowRef], list[ObjectInfo]]) -> None:
    rows, objects = world
    whole = Tally()
    expected = list(classify(rows, objects, RULES, whole))
    first = Tally()
    head = []
    for out in classify(rows, objects, RULES, first):
        head.append(out)
        break
    cursor = first.cursor
    tail = list(
        classify(
            [r for r in rows if r.key > cursor],
            [o for o in objects if o.key > cursor],
            RULES,
            first,
        )
    )
    assert head + tail == expected
    assert first.counts == whole.counts


# -- the report as a value -----------------------------------------------------------------


def _report(rows: list[RowRef], objects: list[ObjectInfo], rid: str = "orph-1") -> OrphanReport:
    tally, spool = Tally(), TempFileRows()
    spool.extend(classify(rows, sorted(objects, key=lambda o: o.key), RULES, tally))
    return OrphanReport(
        id=rid,
        scanned_at=NOW,
        grace=RULES.grace,
        source=ScanSource(database="fake://gocdnext", store="memory://s"),
        counts={c.value: n for c, n in tally.counts.items()},
        bytes={c.value: n for c, n in tally.bytes.items()},
        spool=spool,
    )


def test_report_round_trips_diffs_and_exports(tmp_path: object) -> None:
    from pathlib import Path

    base = Path(str(tmp_path))
    old = _report([row(ART)], [obj(CACHE), obj("foreign")])
    new = _report([row(ART)], [obj(ART), obj("foreign")], rid="orph-2")
    loaded = load_report(save_report(old, base / "r.jsonl"))
    assert loaded.summary() == old.summary()
    assert list(loaded.rows()) == list(old.rows())
    assert list(new.diff(loaded)) == [
        (CACHE, "orphan_object", None),
        (ART, "missing_object", None),
    ]
    csv_text = write_report_csv(old, base / "r.csv").read_text()
    assert csv_text.splitlines()[0].startswith("key,class,size_bytes,table,row_id")
    assert "orphan_object" in old._repr_html_()
    plan = plan_cleanup(loaded)
    assert [i.key for i in plan.items] == [CACHE]  # foreign objects are never planned by default
    assert plan_cleanup(loaded).id == plan.id  # a plan is a value


def test_not_a_report_is_refused(tmp_path: object) -> None:
    from pathlib import Path

    from gocdbackup.errors import UnsupportedFormat

    bad = Path(str(tmp_path)) / "x.json"
    bad.write_text('{"kind": "something else"}\n')
    with pytest.raises(UnsupportedFormat):
        load_report(bad)


def test_saving_to_a_device_writes_through_it_and_never_replaces_it(tmp_path: object) -> None:
    import os
    import stat
    from pathlib import Path

    fifo = Path(str(tmp_path)) / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        save_report(_report([row(ART)], []), fifo)
        header = os.read(reader, 65536).split(b"\n")[0]
    finally:
        os.close(reader)
    assert b'"kind": "gocdbackup.orphan_report"' in header
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a pipe, not a file put in its place
