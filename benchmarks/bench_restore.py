"""Restore wall time against ``pg_restore -j2 --no-owner --no-acl`` of the plain dump file.

Ours does more than the baseline, and its time is reported as is: every chunk is fetched,
authenticated and hashed while it streams into ``pg_restore`` of a staging database, the
whole stream's SHA-256 is checked, the staging database's goose version and per-table row
counts are checked against the manifest, and only then is it renamed into place.  Its
load share (``RestoreReport.restore_seconds``) is reported on a line of its own.

Diagnostics follow: ``pg_restore`` of a ``pg_dump -Fc -Z0`` written to a pipe, which is the
archive gocdbackup stores (a dump streamed through a pipe has no data offsets in its table of
contents, so parallel ``-j2`` must scan for each table's data), with ``-j2`` and ``-j1``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import _db
from _common import Result, median, ratio, run_quiet, seconds_list, timed
from gocdbackup import BackupSet, GocdBackup, RestoreReport
from gocdbackup.testing import LocalPostgres

BASELINE_DB = "bench_plain_restore"
TARGET_DB = "restored"


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
    pg: LocalPostgres, gb: GocdBackup, backup: BackupSet
) -> tuple[float, RestoreReport]:
    """``gb.restore`` into a new database: its wall time and report (then it is dropped)."""
    try:
        with timed() as t:
            report = gb.restore(backup.id, pg.dsn(TARGET_DB), confirm=backup.id)
    finally:
        _db.drop(pg, TARGET_DB)
    return t[0], report


def piped_dump(pg: LocalPostgres, dbname: str, path: Path) -> None:
    """``pg_dump -Fc -Z0 | cat > path``: the archive as gocdbackup streams and stores it."""
    args = [str(pg.bindir / "pg_dump"), "-Fc", "-Z0", f"--dbname={pg.dsn(dbname)}"]
    with subprocess.Popen(args, stdout=subprocess.PIPE) as proc, path.open("wb") as out:
        assert proc.stdout is not None
        shutil.copyfileobj(proc.stdout, out, 1024 * 1024)
    if proc.returncode != 0:
        raise RuntimeError(f"pg_dump exited with {proc.returncode}")


def run(
    pg: LocalPostgres,
    gb: GocdBackup,
    backup: BackupSet,
    dump_path: Path,
    dbname: str,
    *,
    repeat: int,
) -> list[Result]:
    baseline: list[float] = []
    ours: list[float] = []
    loads: list[float] = []
    for _ in range(repeat):
        baseline.append(plain_restore(pg, dump_path))
        seconds, report = our_restore(pg, gb, backup)
        ours.append(seconds)
        loads.append(report.restore_seconds)
    print(f"  pg_restore -j2 of the pg_dump -Fc file: {seconds_list(baseline)}")
    print(
        f"  gocdbackup restore: {seconds_list(ours)}; its pg_restore part {seconds_list(loads)};"
        f" {report.tables_checked} tables / {report.rows_checked:,} rows checked"
    )

    piped = dump_path.with_name("piped-z0.dump")
    piped_dump(pg, dbname, piped)
    piped_j2: list[float] = []
    piped_j1: list[float] = []
    for _ in range(repeat):
        piped_j2.append(plain_restore(pg, piped, jobs=2))
        piped_j1.append(plain_restore(pg, piped, jobs=1))
    piped.unlink()
    print(
        f"  pg_restore of a piped pg_dump -Fc -Z0: -j2 {seconds_list(piped_j2)};"
        f" -j1 {seconds_list(piped_j1)}"
    )

    base = median(baseline)
    rows = [
        (
            "restore time ÷ pg_restore -j2",
            median(ours),
            1.0,
            "verification and row counts included",
        ),
        ("  its pg_restore part ÷ pg_restore -j2", median(loads), None, ""),
        ("  diag: piped -Z0 dump, pg_restore -j2", median(piped_j2), None, "no data offsets"),
        ("  diag: piped -Z0 dump, pg_restore -j1", median(piped_j1), None, "no data offsets"),
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
