"""Child process of the memory benchmark: one backup into a new repository, then its own peak
RSS as one JSON line on stdout.

Usage: ``python _backup_child.py REPO_URL DSN`` with the passphrase in ``GOCDBACKUP_PASSWORD``
(never on the command line).  ``RUSAGE_SELF`` is this Python process alone; pg_dump, which it
waits for, shows up under ``RUSAGE_CHILDREN``.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from gocdbackup import GocdBackup

SCRYPT_N = 2**14


def _maxrss_kib(who: int) -> int:
    return int(resource.getrusage(who).ru_maxrss)  # KiB on Linux


def main(repo_url: str, dsn: str) -> None:
    gb = GocdBackup.init(repo_url, scrypt_n=SCRYPT_N)  # passphrase from GOCDBACKUP_PASSWORD
    before = _maxrss_kib(resource.RUSAGE_SELF)
    start = time.perf_counter()
    backup = gb.backup(dsn)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "maxrss_before_backup_kib": before,
                "maxrss_kib": _maxrss_kib(resource.RUSAGE_SELF),
                "maxrss_pg_dump_kib": _maxrss_kib(resource.RUSAGE_CHILDREN),
                "seconds": seconds,
                "size_bytes": backup.size_bytes,
                "stored_bytes": backup.stored_bytes,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
