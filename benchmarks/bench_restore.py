"""Restore wall time against ``pg_restore -j2 --no-owner --no-acl`` of the guide's ``pg_dump
-Fc`` file, on two databases: the gocdnext-shaped one and one large table with two indexes.

Ours does more than the baseline, and its time is reported as is: every chunk is fetched,
authenticated and checked against its id while it streams into pg_restore of a staging
database, every table's rows are counted and the goose version read and checked against the
manifest, and only then is the staging database renamed into place.  It runs with its default
``jobs`` (the number of cores): the schema, then the tables that many at a time (a large table
cut into pieces), then the indexes and constraints with ``pg_restore -j``.  The time of each
phase is reported, and a restore as one stream (``jobs=1``, what every restore was before) as a
diagnostic.

Peak memory: a restore of the gocdnext-shaped database and of its half-size twin, each in a
fresh child process; the larger may cost at most 10% more.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

import _db
from _common import MB, Result, child_json, median, ratio, run_quiet, seconds_list, timed
from gocdbackup import BackupSet, GocdBackup, RestoreReport
from gocdbackup.testing import LocalPostgres

BASELINE_DB = "bench_plain_restore"
TARGET_DB = "restored"
WIDE_DB = "wide"
#: one table of ~2.2 M rows of ~130 bytes, a primary key and a second index: ≥ 300 MB
WIDE_ROWS = 2_200_000
CHILD = Path(__file__).with_name("_restore_child.py")
FLATNESS_TARGET = 1.10


def plain_restore(pg: LocalPostgres, dump_path: Path, *, jobs: int = 2) -> float:
    """``pg_restore -jN --no-owner --no-acl -d <new empty db>``: its wall time (the empty
    database is created before the clock starts and dropped after it stops)."""
    _db.create_empty(pg, BASELINE_DB)
    try:
        with timed() as t:
            run_quiet(
                [
                    str(pg.bindir / "pg_restore"),
                    f"-j{jobs}",
                    "--no-owner",
                    "--no-acl",
                    f"--dbname={pg.dsn(BASELINE_DB)}",
                    str(dump_path),
                ]
            )
    finally:
        _db.drop(pg, BASELINE_DB)
    return t[0]


def our_restore(
    pg: LocalPostgres, gb: GocdBackup, backup: BackupSet, *, jobs: int | None = None
) -> tuple[float, RestoreReport]:
    """``gb.restore`` into a new database: its wall time and report (then it is dropped)."""
    try:
        with timed() as t:
            report = gb.restore(backup.id, pg.dsn(TARGET_DB), confirm=backup.id, jobs=jobs)
    finally:
        _db.drop(pg, TARGET_DB)
    return t[0], report


def build_wide(pg: LocalPostgres) -> int:
    """The one-large-table database; its size in bytes."""
    _db.create_empty(pg, WIDE_DB)
    with psycopg.connect(pg.dsn(WIDE_DB), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE log_lines (id bigint PRIMARY KEY, job_run_id bigint NOT NULL,"
            " seq int NOT NULL, at timestamptz NOT NULL, line text NOT NULL)"
        )
        conn.execute(
            "INSERT INTO log_lines SELECT g, g / 400, g %% 400,"
            " '2026-11-01'::timestamptz + g * interval '1 second',"
            " 'step ' || (g %% 7) || ': ' || md5(g::text) || ' ' || md5((g * 7)::text)"
            " FROM generate_series(1, %s) g",
            (WIDE_ROWS,),
        )
        conn.execute("CREATE INDEX log_lines_job_seq ON log_lines (job_run_id, seq)")
        conn.execute("VACUUM ANALYZE log_lines")
    _db.checkpoint(pg.dsn(WIDE_DB))
    return _db.database_size(pg.dsn(WIDE_DB))


def compare(
    pg: LocalPostgres,
    gb: GocdBackup,
    backup: BackupSet,
    dump_path: Path,
    *,
    label: str,
    repeat: int,
) -> list[Result]:
    baseline: list[float] = []
    ours: list[float] = []
    streamed: list[float] = []
    phases: dict[str, list[float]] = {}
    report = None
    for _ in range(repeat):
        baseline.append(plain_restore(pg, dump_path))
        seconds, report = our_restore(pg, gb, backup)
        ours.append(seconds)
        for name, value in report.phases:
            phases.setdefault(name, []).append(value)
        streamed.append(our_restore(pg, gb, backup, jobs=1)[0])
    assert report is not None
    print(f"  [{label}] pg_restore -j2 of the pg_dump -Fc file: {seconds_list(baseline)}")
    print(
        f"  [{label}] gocdbackup restore ({report.method}, jobs={report.jobs},"
        f" {report.pieces} pieces): {seconds_list(ours)}; {report.tables_checked} tables /"
        f" {report.rows_checked:,} rows checked"
    )
    for name, values in phases.items():
        print(f"  [{label}]   {name}: {seconds_list(values)}")
    print(f"  [{label}] gocdbackup restore as one stream (jobs=1): {seconds_list(streamed)}")
    base = median(baseline)
    rows: list[tuple[str, float, float | None, str]] = [
        (
            f"restore ÷ pg_restore -j2 ({label})",
            median(ours),
            1.0,
            f"jobs={report.jobs}; verification and row counts included",
        ),
        *(
            (f"  its {name} phase ÷ pg_restore -j2", median(values), None, "")
            for name, values in phases.items()
        ),
        (f"  diag: as one stream (jobs=1) ({label})", median(streamed), None, "before #12"),
    ]
    return [
        Result(
            metric,
            value,
            base,
            ratio(value, base),
            unit="s",
            target=target,
            note=f"medians of {repeat}; {note}".rstrip("; "),
        )
        for metric, value, target, note in rows
    ]


def memory(
    pg: LocalPostgres,
    gb: GocdBackup,
    full: BackupSet,
    half_db: str,
    password: str,
    *,
    repeat: int,
) -> list[Result]:
    half = gb.backup(pg.dsn(half_db))
    peaks: dict[str, list[float]] = {"half": [], "full": []}
    for _ in range(repeat):
        for name, backup in (("half", half), ("full", full)):
            try:
                out = child_json(CHILD, gb.url, backup.id, pg.dsn(TARGET_DB), password=password)
            finally:
                _db.drop(pg, TARGET_DB)
            peaks[name].append(out["peak_kib"] * 1024)
    for name, backup in (("half", half), ("full", full)):
        print(
            f"  {name} ({backup.size_bytes / MB:.0f} MB dump): peak RSS of the restore"
            f" {', '.join(f'{p / MB:.0f}' for p in peaks[name])} MB"
        )
    f, h = median(peaks["full"]), median(peaks["half"])
    return [
        Result(
            "peak RSS of a restore: full ÷ half-size database",
            f / MB,
            h / MB,
            ratio(f, h),
            unit="MB",
            target=FLATNESS_TARGET,
            note=f"medians of {repeat}; each restore in a fresh child process",
        )
    ]


def run(
    pg: LocalPostgres,
    gb: GocdBackup,
    backup: BackupSet,
    dump_path: Path,
    half_db: str,
    password: str,
    *,
    repeat: int,
) -> list[Result]:
    results = compare(pg, gb, backup, dump_path, label="gocdnext-shaped", repeat=repeat)
    with timed() as t:
        size = build_wide(pg)
    print(f"  {WIDE_DB}: one table of {WIDE_ROWS:,} rows, {size / MB:.0f} MB in {t[0]:.1f} s")
    wide_dump = dump_path.with_name("wide.dump")
    run_quiet(
        [str(pg.bindir / "pg_dump"), "-Fc", "-f", str(wide_dump), f"--dbname={pg.dsn(WIDE_DB)}"]
    )
    wide = gb.backup(pg.dsn(WIDE_DB))
    results += compare(pg, gb, wide, wide_dump, label="one large table", repeat=repeat)
    wide_dump.unlink()
    _db.drop(pg, WIDE_DB)
    results += memory(pg, gb, backup, half_db, password, repeat=repeat)
    return results
