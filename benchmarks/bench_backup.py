"""Backup wall time and stored size against a plain ``pg_dump -Fc`` of the same database.

Both use the same pg_dump binary (the embedded PostgreSQL's; gocdbackup finds it on its own).
The timed part of ours is ``GocdBackup.backup(dsn)`` alone; ``init`` (the key derivation) is
not timed.  Each repetition runs the baseline and then ours, each backup into a new empty
repository (so no repetition dedups against another); the medians are compared.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from _common import Result, median, ratio, run_quiet, seconds_list, timed
from gocdbackup import BackupSet, GocdBackup
from gocdbackup.testing import LocalPostgres

SCRYPT_N = 2**14


@dataclass(frozen=True)
class BackupOutcome:
    results: list[Result]
    #: the repository of the last repetition, holding exactly one backup: ``backup``
    gb: GocdBackup
    backup: BackupSet
    #: the plain ``pg_dump -Fc`` file, the restore benchmark's input
    dump_path: Path


def plain_dump(pg: LocalPostgres, dbname: str, path: Path) -> float:
    """``pg_dump -Fc -f path``: its wall time."""
    with timed() as t:
        run_quiet(
            [str(pg.bindir / "pg_dump"), "-Fc", "-f", str(path), f"--dbname={pg.dsn(dbname)}"]
        )
    return t[0]


def one_backup(repo_dir: Path, dsn: str, password: str) -> tuple[GocdBackup, BackupSet, float]:
    gb = GocdBackup.init(f"file://{repo_dir}", password=password, scrypt_n=SCRYPT_N)
    with timed() as t:
        backup = gb.backup(dsn)
    return gb, backup, t[0]


def run(
    pg: LocalPostgres, dbname: str, workdir: Path, password: str, *, repeat: int
) -> BackupOutcome:
    dump_path = workdir / "plain.dump"
    baseline: list[float] = []
    ours: list[float] = []
    previous: Path | None = None
    for n in range(repeat):
        baseline.append(plain_dump(pg, dbname, dump_path))
        repo_dir = workdir / f"repo-backup-{n}"
        gb, backup, seconds = one_backup(repo_dir, pg.dsn(dbname), password)
        ours.append(seconds)
        if previous is not None:
            shutil.rmtree(previous)
        previous = repo_dir
    dump_bytes = dump_path.stat().st_size
    print(f"  pg_dump -Fc: {seconds_list(baseline)}; {dump_bytes:,} bytes")
    print(
        f"  gocdbackup backup: {seconds_list(ours)}"
        f" (last: dump phase {backup.timings.dump_seconds:.2f} s);"
        f" {backup.size_bytes:,} bytes of -Z0 dump stored as {backup.stored_bytes:,} bytes"
    )
    ours_s, baseline_s = median(ours), median(baseline)
    results = [
        Result(
            "backup time ÷ pg_dump -Fc",
            ours_s,
            baseline_s,
            ratio(ours_s, baseline_s),
            unit="s",
            target=0.5,
            note=f"medians of {repeat}",
        ),
        Result(
            "stored bytes ÷ pg_dump -Fc size",
            backup.stored_bytes,
            dump_bytes,
            ratio(backup.stored_bytes, dump_bytes),
            unit="B",
        ),
    ]
    return BackupOutcome(results=results, gb=gb, backup=backup, dump_path=dump_path)
