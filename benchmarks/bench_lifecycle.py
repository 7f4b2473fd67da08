"""Repository lifecycle at scale: planning retention over 10,000 backups (pure), and garbage
collection over 1,000,000 blobs on the memory store.

    python benchmarks/bench_lifecycle.py [--repeat 3] [--blobs 1000000] [--manifests 10]

Every measurement runs in a fresh child process (``_lifecycle_child.py``), so neither the
caller's heap nor an earlier measurement can flatter or inflate it: retention (a pure function;
its memory is the ``tracemalloc`` peak), and each garbage collection over a store of its own (its
memory is the peak RSS).  Every number is a ratio against
a baseline of the same run:

- retention against ``sorted()`` of the same backups by snapshot time (the one step no
  retention can skip; the inputs are shuffled so that both really sort), and 10,000 backups
  against 1,000 (near-linear, not quadratic);
- GC against one bare ``list(store.list("data/"))`` of the same store: the floor of any
  collection, since every blob must be seen once; its store requests are counted (one LIST
  over ``data/``, reads only for the config and the manifests, none per blob).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from _common import MB, Result, median, ratio, seconds_list, table
from gocdbackup.model.backup import BackupSet, BackupStatus, ConsistencyPoint, DatabaseInfo, Timings
from gocdbackup.model.retention import RetentionPolicy, decide_retention
from gocdbackup.ops.gc import SORT_RUN

CHILD = Path(__file__).with_name("_lifecycle_child.py")

BACKUPS = 10_000
SMALL_BACKUPS = 1_000
YEARS = 3
POLICY = RetentionPolicy(
    keep_daily=30, keep_weekly=8, keep_monthly=12, keep_yearly=3, tz="Europe/Berlin"
)
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
PIN_EVERY = 97
FAIL_EVERY = 20
#: 10x the backups may cost at most this much more time: linear is 10, n log n ~13.3, a
#: quadratic step ~100.  Timed as ``timeit`` does, best of N with the cyclic garbage collector
#: off: its full passes walk every live object, the 10,000 inputs included, and when they fall
#: depends on the whole heap, which skews a 1,000-backup plan against a 10,000-backup one by
#: up to ±30 %; the best of N keeps other load on a small machine out of a pure function's time
SCALING_TARGET = 15.0

BLOBS = 1_000_000
#: delete requests a GC of BLOBS may make (issue 17: ≤ 1,000 for 1,000,000 blobs)
DELETE_REQUESTS_TARGET = 1000.0
#: 25,000 referenced blobs a manifest at BLOBS (and at BLOBS / 4, with a quarter of them)
MANIFESTS = 20
#: the GC's memory at BLOBS ÷ at BLOBS / 4 (issue 17: flat)
GC_RSS_TARGET = 1.2
#: a collection lists ``data/`` once, and reads only the config and the manifests
LIST_TARGET = 1.0
READS_TARGET = 1.0


# -- retention ---------------------------------------------------------------------------------


def make_backups(n: int, *, years: int = YEARS, now: datetime = NOW) -> list[BackupSet]:
    """``n`` backups over ``years`` up to ``now``: one nightly at 00:30 Berlin time, the rest
    (ad-hoc and pre-deploy backups) spread evenly in between; every ``PIN_EVERY``-th is pinned,
    every ``FAIL_EVERY``-th FAILED, the newest RUNNING.  Shuffled (deterministically): the order
    a caller passes is not the time order."""
    berlin = ZoneInfo("Europe/Berlin")
    first = (now - timedelta(days=years * 365)).astimezone(berlin).date()
    nights = [
        datetime(d.year, d.month, d.day, 0, 30, tzinfo=berlin).astimezone(UTC)
        for d in (first + timedelta(days=i) for i in range(years * 365 + 1))
    ]
    nights = [t for t in nights if t <= now]
    if n <= len(nights):  # fewer backups than nights: every k-th night
        times = [nights[i * len(nights) // n] for i in range(n)]
    else:
        start, extra = nights[0], n - len(nights)
        span = now - start
        times = nights + [start + span * (i + 0.5) / extra for i in range(extra)]
    times.sort()
    db = DatabaseInfo(
        name="gocdnext", owner="gocdnext", encoding="UTF8", size_bytes=0, pg_dump_version="18.0"
    )
    out = []
    for i, at in enumerate(times):
        status = BackupStatus.FAILED if i % FAIL_EVERY == FAIL_EVERY - 1 else BackupStatus.DONE
        if i == len(times) - 1:
            status = BackupStatus.RUNNING
        out.append(
            BackupSet(
                id=f"{at:%Y%m%dT%H%M%SZ}-{i:05d}",
                status=status,
                point=ConsistencyPoint(
                    snapshot_at=at,
                    snapshot_id=f"00000003-{i:08X}-1",
                    wal_lsn="0/1A2B3C4D",
                    timeline=1,
                    server_version="18.0",
                    server_version_num=180000,
                ),
                database=db,
                components=(),
                timings=Timings(started_at=at, finished_at=at + timedelta(minutes=5)),
                pin="legal hold" if i % PIN_EVERY == PIN_EVERY - 1 else None,
            )
        )
    random.Random(4).shuffle(out)
    return out


def _time_it(fn: Callable[[], object], number: int) -> float:
    """Seconds per call, averaged over ``number`` calls (short calls are noisy alone)."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def _ms(xs: Sequence[float]) -> str:
    return ", ".join(f"{x * 1000:.1f}" for x in xs) + " ms"


def _newest_first(b: BackupSet) -> tuple[datetime, str]:
    return (b.created_at, b.id)


def measure_retention(repeat: int) -> dict[str, Any]:
    """The raw numbers (run in a child: the parent's heap would slow the cyclic garbage
    collector's passes during the plan, and more so for the larger plan)."""
    reps = max(9, repeat)
    tracemalloc.start()
    start = time.perf_counter()
    backups = make_backups(BACKUPS)
    build_seconds = time.perf_counter() - start
    inputs_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    plan = decide_retention(backups, POLICY, now=NOW)
    plan_peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    small = make_backups(SMALL_BACKUPS)

    def plan_all() -> object:
        return decide_retention(backups, POLICY, now=NOW)

    def plan_small() -> object:
        return decide_retention(small, POLICY, now=NOW)

    def sort_all() -> object:
        return sorted(backups, key=_newest_first, reverse=True)

    # alternate, so drift (thermal, other load) hits both sides alike; the 1,000-backup plan
    # and the sort take a few milliseconds, so each of their samples averages 10 calls.  The
    # plan against sorted() is timed as a caller gets it, cyclic GC on; the scaling with it off
    big_s: list[float] = []
    sort_s: list[float] = []
    big_nogc: list[float] = []
    small_nogc: list[float] = []
    for _ in range(reps):
        big_s.append(_time_it(plan_all, 1))
        sort_s.append(_time_it(sort_all, 10))
        gc.collect()
        gc.disable()
        try:
            big_nogc.append(_time_it(plan_all, 1))
            small_nogc.append(_time_it(plan_small, 10))
        finally:
            gc.enable()
    return {
        "reps": reps,
        "build_seconds": build_seconds,
        "inputs_bytes": inputs_bytes,
        "plan_peak_bytes": plan_peak,
        "plan_id": plan.id,
        "keep": len(plan.keep),
        "forget": len(plan.forget),
        "statuses": {s.value: sum(b.status is s for b in backups) for s in BackupStatus},
        "pinned": sum(b.pin is not None for b in backups),
        "plan_seconds": big_s,
        "sort_seconds": sort_s,
        "plan_seconds_gc_off": big_nogc,
        "small_plan_seconds_gc_off": small_nogc,
    }


def run_retention(repeat: int) -> list[Result]:
    m = child("retention", 0, 0, repeat)
    reps, statuses = m["reps"], m["statuses"]
    big_s, sort_s = m["plan_seconds"], m["sort_seconds"]
    big_off, small_off = m["plan_seconds_gc_off"], m["small_plan_seconds_gc_off"]
    big, floor = median(big_s), median(sort_s)
    big_nogc, little = min(big_off), min(small_off)
    inputs_bytes, plan_peak = m["inputs_bytes"], m["plan_peak_bytes"]
    print(
        f"  {BACKUPS:,} backups over {YEARS} years ({statuses['failed']} failed,"
        f" {m['pinned']} pinned, {statuses['running']} running), built in"
        f" {m['build_seconds']:.2f} s; policy {POLICY.describe()}"
    )
    print(
        f"  plan {m['plan_id']}: keep {m['keep']}, forget {m['forget']};"
        f" decide_retention {_ms(big_s)}, sorted() {_ms(sort_s)}"
    )
    print(
        f"  cyclic GC off: {BACKUPS:,} backups {_ms(big_off)}, {SMALL_BACKUPS:,} backups"
        f" {_ms(small_off)}"
    )
    print(
        f"  tracemalloc: inputs {inputs_bytes / MB:.1f} MB, peak while planning"
        f" {plan_peak / MB:.1f} MB"
    )
    return [
        Result(
            f"retention plan, {BACKUPS:,} backups ÷ sorted() of them (ms)",
            big * 1000,
            floor * 1000,
            ratio(big, floor),
            unit="ms",
            note=f"medians of {reps}; daily 30, weekly 8, monthly 12, yearly 3 in Europe/Berlin;"
            f" keeps {m['keep']}; baseline: sorting the same shuffled backups by time",
        ),
        Result(
            f"retention plan, {BACKUPS:,} ÷ {SMALL_BACKUPS:,} backups (ms)",
            big_nogc * 1000,
            little * 1000,
            ratio(big_nogc, little),
            unit="ms",
            target=SCALING_TARGET,
            note=f"best of {reps}, cyclic GC off (as timeit); both over {YEARS} years; linear 10,"
            " n log n 13.3, quadratic 100",
        ),
        Result(
            f"retention plan peak memory ÷ its {BACKUPS:,} inputs",
            float(plan_peak),
            float(inputs_bytes),
            ratio(plan_peak, inputs_bytes),
            unit="B",
            note="tracemalloc: peak allocated while planning ÷ size of the BackupSet values",
        ),
    ]


# -- garbage collection ------------------------------------------------------------------------


def child(mode: str, blobs: int, manifests: int, repeat: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(CHILD), mode, str(blobs), str(manifests), str(repeat)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise RuntimeError(f"lifecycle child ({mode}) exited with {proc.returncode}:\n{tail}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _grown(m: dict[str, Any]) -> float:
    """What the run added to the process's RSS at its peak, in bytes."""
    return float(m["peak_kib"] - m["rss_before_kib"]) * 1024


def _check(m: dict[str, Any]) -> None:
    outcome, expected = m["outcome"], m["expected"]
    for key in ("blobs", "referenced", "to_delete", "too_recent"):
        if outcome[key] != expected[key]:
            raise RuntimeError(f"GC ({m['mode']}) found {key}={outcome[key]}, not {expected[key]}")


def _requests(m: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(m["requests"].items()))


def run_gc(repeat: int, *, blobs: int = BLOBS, manifests: int = MANIFESTS) -> list[Result]:
    """Three children (the bare listing, a dry run, a run that deletes), each over a store of
    its own; timed runs repeat inside a child (the delete runs once), the peak is the first's."""
    base = child("list", blobs, manifests, repeat)
    dry = child("gc-dry", blobs, manifests, min(repeat, 2))
    wet = child("gc-delete", blobs, manifests, 1)
    # a quarter of the blobs in a quarter of the manifests: backups of about the same size
    # (a manifest is read whole, so the largest one is part of any collection's peak)
    quarter = child("gc-dry", blobs // 4, max(1, manifests // 4), 1)
    for m in (dry, wet, quarter):
        _check(m)
    if wet["outcome"]["deleted"] != wet["expected"]["to_delete"]:
        raise RuntimeError(f"GC deleted {wet['outcome']['deleted']} blobs")
    floor, dry_s, wet_s = median(base["seconds"]), median(dry["seconds"]), wet["seconds"][0]
    store_mb = base["rss_before_kib"] * 1024 / MB
    for name, m in (("bare LIST of data/", base), ("GC dry run", dry), ("GC deleting", wet)):
        print(
            f"  {name}: {seconds_list(m['seconds'])}; peak RSS {m['peak_kib'] * 1024 / MB:.0f} MB"
            f" (+{_grown(m) / MB:.0f} MB over the filled store); requests: {_requests(m)}"
        )
    exp = dry["expected"]
    print(
        f"  store: {blobs:,} blobs ({exp['referenced']:,} referenced by {manifests} manifests,"
        f" {exp['too_recent']:,} unreferenced inside the grace period), RSS {store_mb:.0f} MB,"
        f" filled in {base['build_seconds']:.1f} s"
    )
    lists = max(m["requests"].get("list data/", 0) for m in (dry, wet))
    expected_reads = manifests + 1  # the manifests and config.json
    reads = max(
        sum(v for k, v in m["requests"].items() if k.startswith("read ") and k != "read locks")
        for m in (dry, wet)
    )
    data_reads = max(m["requests"].get("read data", 0) for m in (dry, wet))
    deletes = wet["requests"].get("delete data", 0) + wet["requests"].get("delete_many data", 0)
    scope = "run only" if all(m["peak_is_run_only"] for m in (base, dry)) else "whole process"
    return [
        Result(
            f"GC dry run, {blobs:,} blobs ÷ one bare LIST of data/",
            dry_s,
            floor,
            ratio(dry_s, floor),
            unit="s",
            note=f"medians of {len(dry['seconds'])} and {len(base['seconds'])};"
            " Repository.open + collect_garbage on the memory store",
        ),
        Result(
            f"GC deleting {wet['outcome']['deleted']:,} blobs ÷ one bare LIST of data/",
            wet_s,
            floor,
            ratio(wet_s, floor),
            unit="s",
            note="one run; listing, planning and one DeleteObjects per 1,000 blobs",
        ),
        Result(
            "GC dry run peak RSS growth ÷ the bare LIST's",
            _grown(dry),
            _grown(base),
            ratio(_grown(dry), _grown(base)),
            unit="B",
            note=f"VmHWM - RSS before, in a child ({scope}); absolute peak"
            f" {dry['peak_kib'] * 1024 / MB:.0f} MB with the {store_mb:.0f} MB store",
        ),
        Result(
            f"GC dry run peak RSS growth, {blobs:,} blobs ÷ {blobs // 4:,} blobs",
            _grown(dry),
            _grown(quarter),
            ratio(_grown(dry), _grown(quarter)),
            unit="B",
            target=GC_RSS_TARGET,
            note=f"{manifests} and {max(1, manifests // 4)} manifests (backups of about the"
            f" same size); referenced ids sorted on disk in runs of {SORT_RUN:,};"
            f" {_grown(quarter) / MB:.1f} MB and {_grown(dry) / MB:.1f} MB",
        ),
        Result(
            "LIST requests over data/ per GC",
            float(lists),
            1.0,
            float(lists),
            target=LIST_TARGET,
            note="counted by the store; dry run and deleting run",
        ),
        Result(
            "store reads per GC ÷ (manifests + config)",
            float(reads),
            float(expected_reads),
            ratio(reads, expected_reads),
            target=READS_TARGET,
            note=f"reads of data/ {data_reads}; lease reads: dry run"
            f" {dry['requests'].get('read locks', 0)}, deleting run"
            f" {wet['requests'].get('read locks', 0)} (lock check every 1,000 deletions)",
        ),
        Result(
            f"GC delete requests for {wet['outcome']['deleted']:,} blobs",
            float(deletes),
            1.0,
            float(deletes),
            target=DELETE_REQUESTS_TARGET,
            note="ObjectStore.delete_many: one request per 1,000 keys (S3 DeleteObjects)",
        ),
    ]


def run(repeat: int, *, blobs: int = BLOBS, manifests: int = MANIFESTS) -> list[Result]:
    return run_retention(repeat) + run_gc(repeat, blobs=blobs, manifests=manifests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default: %(default)s)")
    parser.add_argument("--blobs", type=int, default=BLOBS, help="default: %(default)s")
    parser.add_argument("--manifests", type=int, default=MANIFESTS, help="default: %(default)s")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = run(max(1, args.repeat), blobs=args.blobs, manifests=args.manifests)
    print(f"\n{table(results)}\n\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
