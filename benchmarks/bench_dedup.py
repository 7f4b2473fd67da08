"""Deduplication of a second backup after ~1% of the database changed the way gocdnext changes
it: the oldest runs retired (their stages, jobs, artifacts and log lines go by cascade), new
runs added with theirs, a few recent runs finished, then VACUUM.  The second backup goes into
the same repository as the first.

Measured twice:

* on the database as ``gocdnext_fixture.build`` lays it out, continuing from the backup
  benchmark's repository;
* after rewriting ``log_lines`` in arrival order (see ``_db.to_arrival_order``), with a new
  repository and a new first backup.  This is the layout of a real installation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import _db
from _common import Result, ratio, timed
from gocdbackup import BackupSet, GocdBackup
from gocdbackup.drivers.gocdnext_fixture import FixtureSpec

SCRYPT_N = 2**14


def second_backup(
    gb: GocdBackup, first: BackupSet, dsn: str, spec: FixtureSpec, label: str
) -> tuple[list[Result], dict[str, Any]]:
    with timed() as t:
        change = _db.change_one_percent(dsn, spec)
    print(f"  [{label}] changed in {t[0]:.1f} s: {change}")
    with timed() as t:
        second = gb.backup(dsn)
    print(
        f"  [{label}] second backup: {t[0]:.2f} s, {second.size_bytes:,} bytes of dump,"
        f" {second.stored_bytes:,} stored (first: {first.stored_bytes:,}),"
        f" dedup {second.dedup_ratio:.1%}"
    )
    results = [
        Result(
            f"dedup ratio of the 2nd backup ({label})",
            second.dedup_ratio,
            None,
            second.dedup_ratio,
            note="share of the dump's bytes already in the repository",
        ),
        Result(
            f"2nd ÷ 1st backup stored bytes ({label})",
            second.stored_bytes,
            first.stored_bytes,
            ratio(second.stored_bytes, first.stored_bytes),
            unit="B",
        ),
    ]
    return results, {**change, "label": label, "second_backup_seconds": round(t[0], 3)}


def run(
    gb: GocdBackup, first: BackupSet, dsn: str, spec: FixtureSpec, workdir: Path, password: str
) -> tuple[list[Result], list[dict[str, Any]]]:
    """The results, and what was changed each time."""
    results, change = second_backup(gb, first, dsn, spec, "fixture row order")

    with timed() as t:
        _db.to_arrival_order(dsn)
    print(f"  log_lines rewritten in arrival order in {t[0]:.1f} s")
    gb2 = GocdBackup.init(f"file://{workdir}/repo-arrival", password=password, scrypt_n=SCRYPT_N)
    first2 = gb2.backup(dsn)
    more, change2 = second_backup(gb2, first2, dsn, spec, "arrival row order")
    return results + more, [change, change2]
