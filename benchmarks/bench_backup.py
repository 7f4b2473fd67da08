"""Backup wall time and stored size against a plain ``pg_dump -Fc`` of the same database.

Both use the same pg_dump binary (the embedded PostgreSQL's); gocdbackup finds it on its own.
The timed part of ours is ``GocdBackup.backup(dsn)`` alone; ``init`` (the key derivation) is
not timed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from _common import Result, ratio, run_quiet, timed
from gocdbackup import BackupSet, GocdBackup
from gocdbackup.testing import LocalPostgres

SCRYPT_N = 2**14


@dataclass(frozen=True)
class BackupOutcome:
    results: list[Result]
    gb: GocdBackup
    backup: BackupSet
    dump_path: Path
    seconds: float


def plain_dump(pg: LocalPostgres, dbname: str, path: Path) -> float:
    """``pg_dump -Fc -f path``: its wall time."""
    with timed() as t:
        run_quiet(
            [str(pg.bindir / "pg_dump"), "-Fc", "-f", str(path), f"--dbname={pg.dsn(dbname)}"]
        )
    return t[0]


def run(pg: LocalPostgres, dbname: str, workdir: Path, password: str) -> BackupOutcome:
    dump_path = workdir / "plain.dump"
    baseline_s = plain_dump(pg, dbname, dump_path)
    dump_bytes = dump_path.stat().st_size
    print(f"  pg_dump -Fc: {baseline_s:.2f} s, {dump_bytes:,} bytes")

    gb = GocdBackup.init(f"file://{workdir}/repo", password=password, scrypt_n=SCRYPT_N)
    with timed() as t:
        backup = gb.backup(pg.dsn(dbname))
    ours_s = t[0]
    print(
        f"  gocdbackup backup: {ours_s:.2f} s (dump phase {backup.timings.dump_seconds:.2f} s),"
        f" {backup.size_bytes:,} bytes of -Z0 dump stored as {backup.stored_bytes:,} bytes"
    )

    results = [
        Result(
            "backup time ÷ pg_dump -Fc",
            ours_s,
            baseline_s,
            ratio(ours_s, baseline_s),
            unit="s",
            target=0.5,
        ),
        Result(
            "stored bytes ÷ pg_dump -Fc size",
            backup.stored_bytes,
            dump_bytes,
            ratio(backup.stored_bytes, dump_bytes),
            unit="B",
        ),
    ]
    return BackupOutcome(results=results, gb=gb, backup=backup, dump_path=dump_path, seconds=ours_s)
