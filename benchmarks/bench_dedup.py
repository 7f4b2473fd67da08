"""Deduplication of a second backup after ~1% of the database changed the way gocdnext changes
it: the oldest runs retired (their stages, jobs, artifacts and log lines go by cascade), new
runs added with theirs, a few recent runs finished, then VACUUM.  The second backup goes into
the same repository as the first (the backup benchmark's).  The fixture lays ``log_lines``
out as gocdnext writes them: each job's lines together, in time order.
"""

from __future__ import annotations

from typing import Any

import _db
from _common import Result, ratio, timed
from gocdbackup import BackupSet, GocdBackup
from gocdbackup.drivers.gocdnext_fixture import FixtureSpec


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
    gb: GocdBackup, first: BackupSet, dsn: str, spec: FixtureSpec
) -> tuple[list[Result], list[dict[str, Any]]]:
    """The results, and what was changed."""
    results, change = second_backup(gb, first, dsn, spec, "1% of rows changed")
    return results, [change]
