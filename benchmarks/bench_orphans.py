"""Orphan reconciliation at scale: the pure merge over 1,000,000 keys, a whole scan of 20,000
objects on a moto S3 server, and the scan's peak memory at 1,000,000 and 4,000,000 keys.

    python benchmarks/bench_orphans.py [--repeat 3] [--entries 1000000] [--objects 20000]
                                       [--rss-entries 1000000 4000000]

Every number is a ratio against a baseline of the same run:

- ``classify`` (the streaming merge of the database's rows with the store's listing) over two
  pre-built, key-sorted lists of ``RowRef`` and ``ObjectInfo`` (1% objects without a row, 0.5%
  rows without an object, everything old enough), in keys per second, against a bare loop that
  walks the same two lists pairwise comparing keys (the cost of touching the data); best of
  ``--repeat``, in a fresh child process (``_orphans_child.py``);
- ``scan_orphans`` with an ``s3://`` :class:`FsspecStore` (its ``scan()`` streams the listing
  page by page) and a :class:`FakeGocdnext` whose rows reference 99% of the objects, against a
  bare ``s3fs.S3FileSystem(...).find(bucket)`` of the same bucket: both on a fresh filesystem
  instance (no instance cache, no listing cache), best of two each, alternating; moto
  (``moto_server``, out of process, as in ``bench_artifacts.py``) is bound by its CPU per
  request, so both sides are counted in LIST requests too;
- the peak RSS growth of ``scan_orphans`` at 4,000,000 keys against 1,000,000, each in a fresh
  child over a store and a database that generate their entries lazily from a counter (nothing
  in memory but what the scan itself keeps).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import MB, Result, ratio, seconds_list, table, timed
from bench_artifacts import S3_ENV, Moto, Phase, _uuid, choose_tool, s3fs_client
from gocdbackup.context import OpContext
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.model import orphan_report
from gocdbackup.model.orphans import OrphanClass, RowRef
from gocdbackup.ops.orphans import scan_orphans
from gocdbackup.testing import FakeClock, FakeDatabaseContents, FakeGocdnext, FakePostgres

CHILD = Path(__file__).with_name("_orphans_child.py")

ENTRIES = 1_000_000
OBJECTS = 20_000
RSS_ENTRIES = (1_000_000, 4_000_000)
BUCKET = "orphans"
#: every ORPHAN_EVERY-th object of the bucket has no row
ORPHAN_EVERY, ORPHAN_AT = 100, 37
OBJECTS_PER_JOB = 5
JOBS_PER_RUN = 2
SEED = 11

MERGE_TARGET = 1_000_000.0  # keys per second
S3_TARGET = 0.9  # scan throughput ÷ find throughput
RSS_TARGET = 1.2  # peak RSS growth at 4M keys ÷ at 1M
#: a report's rows stay in memory up to this many bytes, then go to a temporary file
SPOOL_BYTES = int(getattr(orphan_report, "_SPOOL_BYTES", 8 * 1024 * 1024))


def child(mode: str, entries: int, repeat: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(CHILD), mode, str(entries), str(repeat)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise RuntimeError(f"orphans child ({mode}) exited with {proc.returncode}:\n{tail}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _check(m: dict[str, Any], what: str) -> None:
    if m["counts"] != m["expected"]:
        raise RuntimeError(f"{what}: classified {m['counts']}, expected {m['expected']}")


# -- 1. the pure merge -----------------------------------------------------------------------------


def run_merge(repeat: int, *, entries: int = ENTRIES) -> tuple[list[Result], dict[str, Any]]:
    m = child("merge", entries, max(1, repeat))
    _check(m, "classify")
    if m["bare_keys"] != entries:
        raise RuntimeError(f"the bare merge saw {m['bare_keys']} keys, not {entries}")
    best, floor = min(m["classify_seconds"]), min(m["bare_seconds"])
    rate, floor_rate = entries / best, entries / floor
    counts = m["counts"]
    print(
        f"  {entries:,} keys: {m['rows']:,} rows, {m['objects']:,} objects"
        f" ({counts['orphan_object']:,} without a row, {counts['missing_object']:,} rows"
        f" without an object), built in {m['build_seconds']:.1f} s"
    )
    print(
        f"  classify {seconds_list(m['classify_seconds'])} (best {rate:,.0f} keys/s);"
        f" bare merge {seconds_list(m['bare_seconds'])} (best {floor_rate:,.0f} keys/s)"
    )
    n = len(m["classify_seconds"])
    results = [
        Result(
            f"orphan merge (classify), {entries:,} keys: keys/s",
            rate,
            None,
            rate,
            unit="keys/s",
            target=MERGE_TARGET,
            higher_is_better=True,
            note=f"best of {n}, in a child, cyclic GC on; pre-built RowRef and ObjectInfo lists,"
            " 1% orphan objects, 0.5% rows without objects",
        ),
        Result(
            "orphan merge (classify) ÷ a bare pairwise walk of the same lists",
            best,
            floor,
            ratio(best, floor),
            unit="s",
            note=f"best of {n} each, alternating; the bare loop only compares keys"
            f" ({floor_rate:,.0f} keys/s)",
        ),
    ]
    meta = {
        "entries": entries,
        "rows": m["rows"],
        "objects": m["objects"],
        "counts": counts,
        "classify_seconds": m["classify_seconds"],
        "bare_seconds": m["bare_seconds"],
    }
    return results, meta


# -- 2. a whole scan over moto S3 ----------------------------------------------------------------


def make_objects(directory: Path, n: int) -> list[tuple[str, int]]:
    """``n`` small objects under ``directory`` in gocdnext's artefact layout; (key, size)."""
    rng = random.Random(SEED)
    out = []
    run_id = prefix = ""
    for i in range(n):
        if i % (OBJECTS_PER_JOB * JOBS_PER_RUN) == 0:
            run_id = _uuid(rng)
        if i % OBJECTS_PER_JOB == 0:
            prefix = f"run/{run_id}/job/{_uuid(rng)}"
            (directory / prefix).mkdir(parents=True)
        key = f"{prefix}/{_uuid(rng)}"
        data = rng.randbytes(64 + rng.randrange(1024))
        (directory / key).write_bytes(data)
        out.append((key, len(data)))
    out.sort()
    return out


def _fresh_s3fs(endpoint: str) -> Any:
    import s3fs  # noqa: PLC0415 - an optional extra of gocdbackup

    return s3fs.S3FileSystem(
        key=S3_ENV["AWS_ACCESS_KEY_ID"],
        secret=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=endpoint,
        skip_instance_cache=True,
    )


def _lists(p: Phase) -> int:
    return sum(v for k, v in p.requests.items() if k.startswith("GET "))


def run_s3(
    workdir: Path, repeat: int, *, objects: int = OBJECTS
) -> tuple[list[Result], dict[str, Any]]:
    work = workdir / "orphans"
    work.mkdir(parents=True, exist_ok=True)
    with Moto(work / "moto.log") as moto:
        return _run_s3(moto, work, max(1, min(repeat, 2)), objects)


def _run_s3(
    moto: Moto, work: Path, repeat: int, objects: int
) -> tuple[list[Result], dict[str, Any]]:
    tool, where = choose_tool("auto", moto.endpoint)
    print(f"  moto_server at {moto.endpoint}; objects uploaded with {tool.name} ({where})")
    s3fs_client(moto.endpoint).mkdir(BUCKET)
    with timed() as t:
        objs = make_objects(work / "objects", objects)
    with moto.phase() as populate:
        tool.upload(work / "objects", BUCKET)
    print(
        f"  {objects:,} objects written locally in {t[0]:.1f} s, uploaded in"
        f" {populate.wall:.1f} s; {populate.text()}"
    )
    written = datetime.now(UTC)
    rows = [
        RowRef(
            key=key,
            table="artifacts",
            row_id=str(i + 1),
            status="ready",
            size_bytes=size,
            stamped_at=written - timedelta(days=1),
        )
        for i, (key, size) in enumerate(objs)
        if i % ORPHAN_EVERY != ORPHAN_AT
    ]
    db = FakeGocdnext(FakePostgres("gocdnext", {"gocdnext": FakeDatabaseContents(rows=rows)}))
    options = {
        "endpoint_url": moto.endpoint,
        "key": S3_ENV["AWS_ACCESS_KEY_ID"],
        "secret": S3_ENV["AWS_SECRET_ACCESS_KEY"],
        "skip_instance_cache": True,
    }
    # the scan's clock a day after the upload: everything is older than the default grace
    later = written + timedelta(days=1)
    expected = {
        OrphanClass.OK.value: len(rows),
        OrphanClass.ORPHAN_OBJECT.value: objects - len(rows),
    }

    finds: list[Phase] = []
    scans: list[Phase] = []
    for _ in range(repeat):
        with moto.phase() as p:
            fs = _fresh_s3fs(moto.endpoint)
            fs.invalidate_cache()
            found = fs.find(BUCKET)
        if len(found) != objects:
            raise RuntimeError(f"find() listed {len(found)} objects, not {objects}")
        finds.append(p)
        with moto.phase() as p:
            store = FsspecStore(f"s3://{BUCKET}", options)
            store.fs.invalidate_cache()
            report = scan_orphans(
                db, store, ctx=OpContext(clock=FakeClock(later, step=timedelta(0)))
            )
        counts = {k: v for k, v in report.counts.items() if v}
        if counts != expected or not report.complete:
            raise RuntimeError(f"scan_orphans classified {counts}, expected {expected}")
        scans.append(p)
    find_best = min(finds, key=lambda p: p.wall)
    scan_best = min(scans, key=lambda p: p.wall)
    find_rate, scan_rate = objects / find_best.wall, objects / scan_best.wall
    print(
        f"  s3fs find(): {seconds_list([p.wall for p in finds])} (best {find_rate:,.0f}"
        f" objects/s); {find_best.text()}"
    )
    print(
        f"  scan_orphans: {seconds_list([p.wall for p in scans])} (best {scan_rate:,.0f}"
        f" keys/s); {scan_best.text()}"
    )
    results = [
        Result(
            f"orphan scan over moto S3, {objects:,} objects: keys/s ÷ s3fs find()'s",
            scan_rate,
            find_rate,
            ratio(scan_rate, find_rate),
            unit="keys/s",
            target=S3_TARGET,
            higher_is_better=True,
            note=f"best of {repeat} each, alternating, fresh filesystem instances; scan_orphans"
            f" (FsspecStore.scan pages + FakeGocdnext rows for 99%) sent {_lists(scan_best)} GETs,"
            f" find() {_lists(find_best)}",
        ),
    ]
    meta = {
        "objects": objects,
        "rows": len(rows),
        "upload_tool": tool.name,
        "counts": expected,
        "phases": {
            "populate": populate.as_json(),
            "find": [p.as_json() for p in finds],
            "scan": [p.as_json() for p in scans],
        },
    }
    return results, meta


# -- 3. peak memory at two sizes -----------------------------------------------------------------


def _grown(m: dict[str, Any]) -> float:
    return float(m["peak_kib"] - m["rss_before_kib"]) * 1024


def run_rss(sizes: Sequence[int] = RSS_ENTRIES) -> tuple[list[Result], dict[str, Any]]:
    small, large = sizes
    runs = {n: child("scan", n, 1) for n in (small, large)}
    for n, m in runs.items():
        _check(m, f"scan_orphans over {n:,} keys")
        print(
            f"  {n:,} keys: scan_orphans {m['seconds']:.1f} s ({n / m['seconds']:,.0f} keys/s,"
            f" generation included); peak RSS {m['peak_kib'] * 1024 / MB:.1f} MB (+"
            f"{_grown(m) / MB:.1f} MB over {m['rss_before_kib'] * 1024 / MB:.1f} MB);"
            f" report {m['report_rows']:,} rows, {m['report_bytes'] / MB:.1f} MB of JSON lines,"
            f" {min(m['report_bytes'], SPOOL_BYTES) / MB:.1f} MB of them in memory"
        )
    a, b = runs[small], runs[large]
    scope = "scan only" if a["peak_is_run_only"] and b["peak_is_run_only"] else "whole process"
    results = [
        Result(
            f"orphan scan peak RSS growth, {large:,} ÷ {small:,} keys",
            _grown(b),
            _grown(a),
            ratio(_grown(b), _grown(a)),
            unit="B",
            target=RSS_TARGET,
            note=f"VmHWM - RSS before, fresh children ({scope}); lazily generated store and"
            f" rows; report spool {a['report_bytes'] / MB:.1f} and {b['report_bytes'] / MB:.1f}"
            f" MB (in memory up to {SPOOL_BYTES / MB:.1f} MB, then a temporary file)",
        ),
    ]
    meta = {
        str(n): {
            k: m[k]
            for k in ("seconds", "rss_before_kib", "peak_kib", "report_rows", "report_bytes")
        }
        for n, m in runs.items()
    }
    return results, meta


# -- the benchmark --------------------------------------------------------------------------------


def run(
    workdir: Path,
    repeat: int,
    *,
    entries: int = ENTRIES,
    objects: int = OBJECTS,
    rss_entries: Sequence[int] = RSS_ENTRIES,
) -> tuple[list[Result], dict[str, Any]]:
    """The results, and what was measured."""
    merge_results, merge_meta = run_merge(repeat, entries=entries)
    s3_results, s3_meta = run_s3(workdir, repeat, objects=objects)
    rss_results, rss_meta = run_rss(rss_entries)
    meta = {"merge": merge_meta, "s3": s3_meta, "rss": rss_meta}
    return merge_results + s3_results + rss_results, meta


def main(argv: list[str] | None = None) -> int:
    import tempfile  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default: %(default)s)")
    parser.add_argument("--entries", type=int, default=ENTRIES, help="default: %(default)s")
    parser.add_argument("--objects", type=int, default=OBJECTS, help="default: %(default)s")
    parser.add_argument(
        "--rss-entries",
        type=int,
        nargs=2,
        default=RSS_ENTRIES,
        help="the two sizes of the memory comparison (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gocdbackup-bench-") as tmp:
        results, _ = run(
            Path(tmp),
            max(1, args.repeat),
            entries=args.entries,
            objects=args.objects,
            rss_entries=args.rss_entries,
        )
    print(f"\n{table(results)}\n\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
