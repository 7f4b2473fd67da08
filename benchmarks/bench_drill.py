"""Wall time of a restore drill (``gocdbackup.run_drill``), per step, on the demo's dataset and
on a gocdnext-shaped database of at least 300 MB.

    python benchmarks/bench_drill.py [--repeat 3] [--no-big]

A drill verifies a backup, restores it into a scratch database (and a sample of its objects
into a scratch store, a temporary directory), runs its checks (goose versions, exact row
counts and every foreign key row by row, the dashboard's query, the newest run, a finished
job's logs, the sampled objects' SHA-256, and with the key every sealed value) and drops the
scratch database. Each drill's wall time is the ``run_drill`` call's, from outside; its steps
(``verify``, ``restore``, ``artifacts``, ``checks``, ``teardown``) are the drill's own
``DrillReport.steps``. Every drill must pass (``report.ok``), or the benchmark stops with its
report. The repositories are fresh (scrypt N = 2**14; ``init`` and the backups not timed).

1. The demo's dataset: ``FixtureSpec()`` (the default, as ``gocdbackup demo`` builds it) with
   every object its rows reference written by ``fill_store``, backed up with its artefacts and
   the application key. Drilled with the key and ``sample=1.0`` (every object), the scratch
   database on the same embedded server: the wall time ÷ 60 s, target ≤ 1.0 (lower is
   better). The baseline is that fixed target, not a measurement (gocdnext's guide puts its
   drill by hand at about 30 minutes). Medians of ``--repeat``. Report only: the same drill
   with the default scratch (no ``scratch_db``: ``run_drill`` starts an embedded PostgreSQL of
   its own and stops it afterwards, which is in the wall time but in none of the steps),
   alternating with the first.
2. The PostgreSQL section's fixture (``_db.FULL``, built with ``_db.build``; its key is not
   kept, so the secrets check is skipped) with its objects written by ``fill_store``, backed up
   with its artefacts. Drilled with the default sample (20 objects), the scratch database on
   the same server, against a plain ``GocdBackup.restore`` of the same backup (the database
   alone) into a fresh database of that server, dropped afterwards (not timed); the plain
   restore first, then the drill, ``--repeat`` times, medians compared; report only.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import _db
from _common import MB, Result, median, ratio, seconds_list, table, timed
from gocdbackup import BackupSet, DrillReport, GocdBackup, run_drill
from gocdbackup.testing import FixtureSpec, LocalPostgres, build_gocdnext_fixture, fill_store

DEMO_DB = "gocdnext_drill_demo"
BIG_DB = "gocdnext_drill"
PLAIN_DB = "bench_drill_plain"
TARGET_SECONDS = 60.0  # the demo dataset's drill, end to end
SCRYPT_N = 2**14
BIG_SAMPLE = 20  # run_drill's default sample
STEPS = ("verify", "restore", "artifacts", "checks", "teardown")


def _init(workdir: Path, name: str, password: str) -> GocdBackup:
    return GocdBackup.init(f"file://{workdir / name}", password=password, scrypt_n=SCRYPT_N)


def drill(
    gb: GocdBackup, *, scratch_db: str | None, key: bytes | None, sample: int | float
) -> tuple[float, DrillReport]:
    """One drill of ``gb``'s newest backup: its wall time and report (which must pass)."""
    with timed() as t:
        report = run_drill(
            gb,
            scratch_db=scratch_db,
            secret_key=None if key is None else key.hex(),
            sample=sample,
            raise_on_failure=False,
        )
    if not report.ok:
        raise RuntimeError(f"the drill failed:\n{report.to_markdown()}")
    return t[0], report


def plain_restore(pg: LocalPostgres, gb: GocdBackup, backup: BackupSet) -> float:
    """``gb.restore`` of ``backup`` into a new database of ``pg`` (dropped afterwards)."""
    try:
        with timed() as t:
            gb.restore(backup.id, pg.dsn(PLAIN_DB), confirm=backup.id)
    finally:
        _db.drop(pg, PLAIN_DB)
    return t[0]


class _Runs:
    """The wall times and per-step times of a series of drills."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.steps: dict[str, list[float]] = {name: [] for name in STEPS}
        self.last: DrillReport | None = None

    def add(self, wall: float, report: DrillReport) -> None:
        self.wall.append(wall)
        for step in report.steps:
            self.steps.setdefault(step.name, []).append(step.seconds)
        self.last = report

    def outside(self) -> list[float]:
        """Wall time outside the steps (a scratch server started and stopped, the backup
        looked up, the record kept)."""
        per_run = zip(*(self.steps[name] for name in STEPS), strict=True)
        return [w - sum(s) for w, s in zip(self.wall, per_run, strict=True)]

    def medians(self) -> dict[str, float]:
        return {name: median(xs) for name, xs in self.steps.items() if xs}

    def describe(self) -> str:
        steps = "; ".join(f"{name} {seconds_list(xs)}" for name, xs in self.steps.items() if xs)
        return f"wall {seconds_list(self.wall)} ({steps})"

    def as_json(self) -> dict[str, Any]:
        last = self.last
        return {
            "wall_seconds": [round(x, 3) for x in self.wall],
            "step_seconds": {k: [round(x, 3) for x in v] for k, v in self.steps.items()},
            "outside_steps_seconds": [round(x, 3) for x in self.outside()],
            "checks": {c.name: c.evidence for c in last.checks} if last else {},
        }


def _print_report(report: DrillReport) -> None:
    print(f"  {report.verdict()}")
    for check in report.checks:
        print(f"    {check.name}: {check.evidence}")


def _step_rows(title: str, runs: _Runs) -> list[Result]:
    """A row per step: its median, and its share of the median wall time."""
    wall = median(runs.wall)
    notes = {s.name: s.note for s in runs.last.steps} if runs.last else {}
    return [
        Result(
            f"  {title}: {name} (share of the drill)",
            seconds,
            wall,
            ratio(seconds, wall),
            unit="s",
            note=notes.get(name, ""),
        )
        for name, seconds in runs.medians().items()
    ]


def setup_demo(pg: LocalPostgres, workdir: Path, password: str) -> dict[str, Any]:
    key = os.urandom(32)
    _db.create_empty(pg, DEMO_DB)
    dsn = pg.dsn(DEMO_DB)
    store_url = (workdir / "drill-demo-artifacts").as_uri()
    with timed() as t_build:
        build_gocdnext_fixture(dsn, FixtureSpec(), secret_key=key)
        objects = fill_store(dsn, store_url)
        _db.checkpoint(dsn)
    gb = _init(workdir, "repo-drill-demo", password)
    with timed() as t_backup:
        backup = gb.backup(dsn, artifacts=store_url, secret_key=key.hex())
    return {
        "gb": gb,
        "key": key,
        "objects": objects,
        "db_bytes": _db.database_size(dsn),
        "build_seconds": t_build[0],
        "backup_seconds": t_backup[0],
        "backup": backup,
    }


def setup_big(pg: LocalPostgres, workdir: Path, password: str) -> dict[str, Any]:
    with timed() as t_build:
        size = _db.build(pg, BIG_DB, _db.FULL)
    if size < _db.MIN_FULL_BYTES:
        raise SystemExit(
            f"the benchmark database is only {size:,} bytes; raise the FixtureSpec in"
            " benchmarks/_db.py"
        )
    dsn = pg.dsn(BIG_DB)
    store_url = (workdir / "drill-big-artifacts").as_uri()
    with timed() as t_fill:
        objects = fill_store(dsn, store_url)
        _db.checkpoint(dsn)
    gb = _init(workdir, "repo-drill-big", password)
    with timed() as t_backup:
        backup = gb.backup(dsn, artifacts=store_url)
    return {
        "gb": gb,
        "objects": objects,
        "db_bytes": size,
        "build_seconds": t_build[0],
        "fill_seconds": t_fill[0],
        "backup_seconds": t_backup[0],
        "backup": backup,
    }


def run_demo(pg: LocalPostgres, workdir: Path, password: str, repeat: int) -> dict[str, Any]:
    demo = setup_demo(pg, workdir, password)
    backup: BackupSet = demo["backup"]
    print(
        f"  demo dataset: {demo['db_bytes'] / MB:.1f} MB database, {demo['objects']:,} objects"
        f" (built in {demo['build_seconds']:.1f} s); backup {backup.size_bytes / MB:.1f} MB"
        f" in {demo['backup_seconds']:.1f} s"
    )
    same, own = _Runs(), _Runs()
    for _ in range(repeat):
        same.add(*drill(demo["gb"], scratch_db=pg.dsn(), key=demo["key"], sample=1.0))
        own.add(*drill(demo["gb"], scratch_db=None, key=demo["key"], sample=1.0))
    assert same.last is not None
    _print_report(same.last)
    print(f"  drill, scratch on the same server: {same.describe()}")
    print(
        f"  drill, default scratch (its own embedded server): {own.describe()};"
        f" outside the steps {seconds_list(own.outside())}"
    )
    return {
        "same": same,
        "own": own,
        "meta": {
            "fixture": "FixtureSpec()",
            "db_bytes": demo["db_bytes"],
            "objects": demo["objects"],
            "backup_bytes": backup.size_bytes,
            "build_seconds": round(demo["build_seconds"], 3),
            "backup_seconds": round(demo["backup_seconds"], 3),
            "same_server": same.as_json(),
            "own_server": own.as_json(),
        },
    }


def run_big(pg: LocalPostgres, workdir: Path, password: str, repeat: int) -> dict[str, Any]:
    big = setup_big(pg, workdir, password)
    backup: BackupSet = big["backup"]
    print(
        f"  {BIG_DB}: {big['db_bytes']:,} bytes ({big['db_bytes'] / MB:.1f} MB) in"
        f" {big['build_seconds']:.1f} s; {big['objects']:,} objects in"
        f" {big['fill_seconds']:.1f} s; backup {backup.size_bytes / MB:.1f} MB in"
        f" {big['backup_seconds']:.1f} s"
    )
    runs, plain = _Runs(), []
    for _ in range(repeat):
        plain.append(plain_restore(pg, big["gb"], backup))
        runs.add(*drill(big["gb"], scratch_db=pg.dsn(), key=None, sample=BIG_SAMPLE))
    assert runs.last is not None
    _print_report(runs.last)
    print(f"  plain GocdBackup.restore: {seconds_list(plain)}")
    print(f"  drill, scratch on the same server: {runs.describe()}")
    _db.drop(pg, BIG_DB)
    return {
        "runs": runs,
        "plain": plain,
        "meta": {
            "fixture": "_db.FULL",
            "db_bytes": big["db_bytes"],
            "objects": big["objects"],
            "backup_bytes": backup.size_bytes,
            "build_seconds": round(big["build_seconds"], 3),
            "fill_seconds": round(big["fill_seconds"], 3),
            "backup_seconds": round(big["backup_seconds"], 3),
            "sample": BIG_SAMPLE,
            "plain_restore_seconds": [round(x, 3) for x in plain],
            "drill": runs.as_json(),
        },
    }


def run(
    pg: LocalPostgres,
    workdir: Path,
    repeat: int,
    *,
    big: bool = True,
) -> tuple[list[Result], dict[str, Any]]:
    """The results, and what was measured."""
    password = secrets.token_urlsafe(24)  # the repositories' passphrase: never printed
    demo = run_demo(pg, workdir, password, repeat)
    same: _Runs = demo["same"]
    own: _Runs = demo["own"]
    wall = median(same.wall)
    own_wall = median(own.wall)
    results = [
        Result(
            "restore drill, demo dataset: wall time ÷ a fixed 60 s target",
            wall,
            TARGET_SECONDS,
            ratio(wall, TARGET_SECONDS),
            unit="s",
            target=1.0,
            note=f"medians of {len(same.wall)}; the baseline is the fixed 60 s target, not a"
            " measurement (gocdnext's drill by hand: ~30 min); scratch database on the same"
            " server, every object sampled, the key given",
        ),
        *_step_rows("demo", same),
        Result(
            "restore drill, demo dataset, its own embedded server: wall time ÷ 60 s",
            own_wall,
            TARGET_SECONDS,
            ratio(own_wall, TARGET_SECONDS),
            unit="s",
            note=f"medians of {len(own.wall)}, alternating; starting and stopping the server"
            f" (outside the steps) median {median(own.outside()):.2f} s",
        ),
    ]
    meta: dict[str, Any] = {"repeat": repeat, "demo": demo["meta"]}
    if big:
        got = run_big(pg, workdir, password, repeat)
        runs: _Runs = got["runs"]
        drill_s, plain_s = median(runs.wall), median(got["plain"])
        size = got["meta"]["db_bytes"]
        results += [
            Result(
                f"restore drill, {size / MB:.0f} MB database: wall time ÷ a plain"
                " GocdBackup.restore",
                drill_s,
                plain_s,
                ratio(drill_s, plain_s),
                unit="s",
                note=f"medians of {len(runs.wall)}, alternating, the plain restore first; the"
                f" drill restores {BIG_SAMPLE} objects and checks every foreign key; no key (the"
                " secrets check skipped)",
            ),
            *_step_rows(f"{size / MB:.0f} MB", runs),
        ]
        meta["big"] = got["meta"]
    return results, meta


def main(argv: list[str] | None = None) -> int:
    import tempfile  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default: %(default)s)")
    parser.add_argument("--no-big", action="store_true", help="the demo dataset only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="gocdbackup-bench-") as tmp,
        LocalPostgres.start(parent_dir=str(Path(tmp))) as pg,
    ):
        results, _ = run(
            pg,
            Path(tmp),
            max(1, args.repeat),
            big=not args.no_big,
        )
    print(f"\n{table(results)}\n\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
