"""Child process of the memory benchmark: one backup into a new repository, then its memory
use as one JSON line on stdout.

Usage: ``python _backup_child.py REPO_URL DSN`` with the passphrase in ``GOCDBACKUP_PASSWORD``
(never on the command line).

The peak is the kernel's high-water mark of this process (``VmHWM``), reset just before the
backup (``/proc/self/clear_refs``), so it is the backup's own peak, not the imports'.
``ru_maxrss`` is not used: after fork+exec it starts from the forking parent's high-water mark,
so it reports the parent's size whenever that is larger.
"""

from __future__ import annotations

import json
import sys
import time

from _rss import reset_peak, status_kib
from gocdbackup import GocdBackup

SCRYPT_N = 2**14


def main(repo_url: str, dsn: str) -> None:
    gb = GocdBackup.init(repo_url, scrypt_n=SCRYPT_N)  # passphrase from GOCDBACKUP_PASSWORD
    startup_peak = status_kib("VmHWM")
    reset = reset_peak()
    before = status_kib("VmRSS")
    start = time.perf_counter()
    backup = gb.backup(dsn)
    seconds = time.perf_counter() - start
    result = {
        "startup_peak_kib": startup_peak,
        "rss_before_kib": before,
        "peak_kib": status_kib("VmHWM"),
        "peak_is_backup_only": reset,
        "seconds": seconds,
        "size_bytes": backup.size_bytes,
        "stored_bytes": backup.stored_bytes,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
