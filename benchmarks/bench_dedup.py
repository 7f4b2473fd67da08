"""Deduplication of a second backup after ~1% of the database changed the way gocdnext changes
it (oldest runs retired with their logs, new runs with logs added, recent runs finished,
VACUUM).  The second backup goes into the same repository as the first."""

from __future__ import annotations

from typing import Any

import _db
from _common import Result, ratio, timed
from gocdbackup import BackupSet, GocdBackup
from gocdbackup.drivers.gocdnext_fixture import FixtureSpec


def run(
    gb: GocdBackup, first: BackupSet, dsn: str, spec: FixtureSpec
) -> tuple[list[Result], dict[str, Any]]:
    """The results, and what was changed."""
    with timed() as t:
        change = _db.change_one_percent(dsn, spec)
    print(f"  changed in {t[0]:.1f} s: {change}")
    with timed() as t:
        second = gb.backup(dsn)
    print(
        f"  second backup: {t[0]:.2f} s, {second.size_bytes:,} bytes of dump,"
        f" {second.stored_bytes:,} stored, dedup {second.dedup_ratio:.1%}"
    )
    results = [
        Result(
            "dedup ratio of the 2nd backup",
            second.dedup_ratio,
            None,
            second.dedup_ratio,
            note="share of the dump's bytes already in the repository",
        ),
        Result(
            "2nd backup stored ÷ 1st backup stored",
            second.stored_bytes,
            first.stored_bytes,
            ratio(second.stored_bytes, first.stored_bytes),
            unit="B",
        ),
    ]
    return results, {**change, "second_backup_seconds": t[0]}
