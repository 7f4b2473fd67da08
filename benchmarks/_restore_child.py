"""Child process of the restore benchmark: one restore of a backup into a new database, then
its memory use and report as one JSON line on stdout.

Usage: ``python _restore_child.py REPO_URL BACKUP_ID TARGET_DSN`` with the passphrase in
``GOCDBACKUP_PASSWORD`` (never on the command line).  The peak is measured as in
``_backup_child.py`` (``VmHWM`` reset just before the restore).
"""

from __future__ import annotations

import json
import sys
import time

from _rss import reset_peak, status_kib
from gocdbackup import GocdBackup


def main(repo_url: str, backup_id: str, target: str) -> None:
    gb = GocdBackup(repo_url)  # passphrase from GOCDBACKUP_PASSWORD
    gb.get_backup(backup_id)  # open the repository before the peak is reset
    reset = reset_peak()
    start = time.perf_counter()
    report = gb.restore(backup_id, target, confirm=backup_id)
    seconds = time.perf_counter() - start
    result = {
        "peak_kib": status_kib("VmHWM"),
        "peak_is_restore_only": reset,
        "seconds": seconds,
        "method": report.method,
        "jobs": report.jobs,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
