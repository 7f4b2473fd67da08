"""Child process of the orphans benchmark: the pure merge over pre-built lists, or a whole
``scan_orphans`` over streams generated lazily, in a fresh interpreter so each measurement (and
its peak memory) is its own.

Usage: ``python _orphans_child.py MODE ENTRIES REPEAT`` with MODE one of

``merge``  ENTRIES keys as two pre-built, key-sorted lists (``RowRef`` and ``ObjectInfo``);
           ``classify`` over them against a bare loop that walks both lists pairwise comparing
           keys, alternated REPEAT times
``scan``   ``scan_orphans`` over a store and a database that generate ENTRIES keys lazily from
           a counter (nothing is held but the current entry); runs once

Prints one JSON line; for ``scan``: the wall time, the process's RSS before the scan and its
high-water mark (``VmHWM``, reset just before through ``/proc/self/clear_refs``) during it.

The keys are in gocdnext's artefact layout, ``run/<uuid>/job/<uuid>/<uuid>`` (10 objects per
run, 5 per job), with fixed-width hex counters for uuids so that counter order is key order.
Every ``ORPHAN_EVERY``-th key is an object without a row (``orphan_object``), every
``MISSING_EVERY``-th (offset so the two never meet) a ready row without its object
(``missing_object``), the rest a ready row and its object of the same size; everything is two
days older than the scan.  A row's key and its object's key are distinct ``str`` objects, as
they are when they come from a database and a listing (equal keys are compared, not identical).
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from _rss import reset_peak, status_kib
from gocdbackup.context import OpContext
from gocdbackup.model.orphans import OrphanClass, RowRef, ScanRules, Tally, classify
from gocdbackup.ops.orphans import scan_orphans
from gocdbackup.ports import ObjectInfo
from gocdbackup.testing import FakeClock

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
WRITTEN_AT = NOW - timedelta(days=2)
GRACE = timedelta(hours=6)
#: 1% of the keys are objects without a row, 0.5% rows without an object
ORPHAN_EVERY, ORPHAN_AT = 100, 37
MISSING_EVERY, MISSING_AT = 200, 73
OBJECTS_PER_JOB = 5
JOBS_PER_RUN = 2
SHA256 = "ab" * 32  # one shared value: rows carry one, the fast path never reads it


def _uuid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


def keys(entries: int) -> Iterator[tuple[int, str]]:
    """``(i, the i-th key)`` in order, each key a new ``str``."""
    prefix = ""
    for i in range(entries):
        if i % OBJECTS_PER_JOB == 0:
            job = i // OBJECTS_PER_JOB
            prefix = f"run/{_uuid(job // JOBS_PER_RUN)}/job/{_uuid(job)}/"
        yield i, prefix + _uuid(i)


def size(i: int) -> int:
    return 1024 + i % 20_000


def has_row(i: int) -> bool:
    return i % ORPHAN_EVERY != ORPHAN_AT


def has_object(i: int) -> bool:
    return i % MISSING_EVERY != MISSING_AT


def rows(entries: int) -> Iterator[RowRef]:
    for i, k in keys(entries):
        if has_row(i):
            yield RowRef(
                key=k,
                table="artifacts",
                row_id=str(i + 1),
                status="ready",
                size_bytes=size(i),
                sha256=SHA256,
                stamped_at=WRITTEN_AT,
            )


def objects(entries: int) -> Iterator[ObjectInfo]:
    for i, k in keys(entries):
        if has_object(i):
            yield ObjectInfo(key=k, size_bytes=size(i), modified_at=WRITTEN_AT)


def expected(entries: int) -> dict[str, int]:
    orphans = sum(1 for i in range(ORPHAN_AT, entries, ORPHAN_EVERY))
    missing = sum(1 for i in range(MISSING_AT, entries, MISSING_EVERY))
    return {
        OrphanClass.OK.value: entries - orphans - missing,
        OrphanClass.ORPHAN_OBJECT.value: orphans,
        OrphanClass.MISSING_OBJECT.value: missing,
    }


def _counts(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


# -- the pure merge ------------------------------------------------------------------------------


def bare_merge(rows: list[RowRef], objects: list[ObjectInfo]) -> int:
    """The floor of any merge: walk both lists pairwise comparing keys; the keys seen."""
    i = j = n = 0
    n_rows, n_objects = len(rows), len(objects)
    while i < n_rows and j < n_objects:
        rk, ok = rows[i].key, objects[j].key
        if rk == ok:
            i += 1
            j += 1
        elif rk < ok:
            i += 1
        else:
            j += 1
        n += 1
    return n + (n_rows - i) + (n_objects - j)


def merge(entries: int, repeat: int) -> dict[str, Any]:
    start = time.perf_counter()
    gc.disable()  # building 2M tracked objects with it on triggers full passes over them
    try:
        row_list, object_list = list(rows(entries)), list(objects(entries))
    finally:
        gc.enable()
    build_seconds = time.perf_counter() - start
    rules = ScanRules(now=NOW, grace=GRACE)
    bare_s: list[float] = []
    classify_s: list[float] = []
    counts: dict[str, int] = {}
    seen = 0
    # alternate, so drift (other load on a small machine) hits both sides alike; the cyclic
    # garbage collector stays on, as a caller gets it, after one collection of the inputs
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        seen = bare_merge(row_list, object_list)
        bare_s.append(time.perf_counter() - t0)
        gc.collect()
        tally = Tally()
        t0 = time.perf_counter()
        deque(classify(row_list, object_list, rules, tally), maxlen=0)
        classify_s.append(time.perf_counter() - t0)
        counts = {c.value: n for c, n in tally.counts.items()}
    return {
        "mode": "merge",
        "entries": entries,
        "rows": len(row_list),
        "objects": len(object_list),
        "build_seconds": build_seconds,
        "bare_seconds": bare_s,
        "classify_seconds": classify_s,
        "bare_keys": seen,
        "counts": _counts(counts),
        "expected": expected(entries),
    }


# -- scan_orphans over lazy streams ----------------------------------------------------------------


class CountedStore:
    """Just what ``scan_orphans`` asks of an :class:`~gocdbackup.ports.ObjectStore` (without
    content verification): its URL and a key-ordered ``scan``, generated from a counter."""

    def __init__(self, entries: int) -> None:
        self.entries = entries

    @property
    def url(self) -> str:
        return "synthetic://orphans"

    def scan(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        for info in objects(self.entries):
            if info.key > start_after and info.key.startswith(prefix):
                yield info


class CountedDatabase:
    """Just what ``scan_orphans`` asks of a :class:`~gocdbackup.ports.GocdnextData`: its source id
    and the key-ordered ``object_rows``, generated from a counter."""

    def __init__(self, entries: int) -> None:
        self.entries = entries

    def source_id(self) -> str:
        return "synthetic://gocdnext"

    def object_rows(self, start_after: str = "") -> Iterator[RowRef]:
        for ref in rows(self.entries):
            if ref.key > start_after:
                yield ref


def scan(entries: int) -> dict[str, Any]:
    store, db = CountedStore(entries), CountedDatabase(entries)
    ctx = OpContext(clock=FakeClock(NOW, step=timedelta(0)))
    gc.collect()
    startup_peak = status_kib("VmHWM")
    reset = reset_peak()
    before = status_kib("VmRSS")
    start = time.perf_counter()
    report = scan_orphans(db, store, ctx=ctx, grace=GRACE)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    peak = status_kib("VmHWM")
    spool_bytes = sum(len(line) + 1 for line in report.spool.lines())
    return {
        "mode": "scan",
        "entries": entries,
        "seconds": seconds,
        "startup_peak_kib": startup_peak,
        "rss_before_kib": before,
        "peak_kib": peak,
        "peak_is_run_only": reset,
        "report_rows": report.spool.count,
        "report_bytes": spool_bytes,
        "complete": report.complete,
        "counts": _counts(dict(report.counts)),
        "expected": expected(entries),
    }


def main(mode: str, entries: int, repeat: int) -> None:
    if mode == "merge":
        out = merge(entries, repeat)
    elif mode == "scan":
        out = scan(entries)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
