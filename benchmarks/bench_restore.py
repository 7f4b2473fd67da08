"""Restore wall time against ``pg_restore -j2 --no-owner --no-acl`` of the plain dump file.

Ours does more than the baseline, and the time is reported as is: every chunk is fetched,
authenticated and hashed, the dump is spooled to a scratch file and its table of contents read,
the restore goes into a staging database whose goose version and per-table row counts are
checked against the manifest, and only then is it renamed into place.  Its pg_restore share
(``RestoreReport.restore_seconds``) is printed alongside.
"""

from __future__ import annotations

from pathlib import Path

import _db
from _common import Result, ratio, run_quiet, timed
from gocdbackup import BackupSet, GocdBackup
from gocdbackup.testing import LocalPostgres

BASELINE_DB = "bench_plain_restore"
TARGET_DB = "restored"


def plain_restore(pg: LocalPostgres, dump_path: Path, dbname: str) -> float:
    """``pg_restore -j2 --no-owner --no-acl -d <new empty db>``: its wall time (the empty
    database is created before the clock starts)."""
    _db.create_empty(pg, dbname)
    with timed() as t:
        run_quiet(
            [
                str(pg.bindir / "pg_restore"),
                "-j2",
                "--no-owner",
                "--no-acl",
                f"--dbname={pg.dsn(dbname)}",
                str(dump_path),
            ]
        )
    return t[0]


def run(pg: LocalPostgres, gb: GocdBackup, backup: BackupSet, dump_path: Path) -> list[Result]:
    try:
        baseline_s = plain_restore(pg, dump_path, BASELINE_DB)
    finally:
        _db.drop(pg, BASELINE_DB)
    print(f"  pg_restore -j2: {baseline_s:.2f} s")

    try:
        with timed() as t:
            report = gb.restore(backup.id, pg.dsn(TARGET_DB), confirm=backup.id)
    finally:
        _db.drop(pg, TARGET_DB)
    ours_s = t[0]
    print(
        f"  gocdbackup restore: {ours_s:.2f} s (pg_restore part {report.restore_seconds:.2f} s,"
        f" {report.tables_checked} tables / {report.rows_checked:,} rows checked)"
    )
    return [
        Result(
            "restore time ÷ pg_restore -j2",
            ours_s,
            baseline_s,
            ratio(ours_s, baseline_s),
            unit="s",
            target=1.0,
            note=f"includes verification and row counts; pg_restore part "
            f"{report.restore_seconds:.2f} s",
        ),
        Result(
            "  of which pg_restore ÷ pg_restore -j2",
            report.restore_seconds,
            baseline_s,
            ratio(report.restore_seconds, baseline_s),
            unit="s",
        ),
    ]
