"""Peak RSS of a backup process at two database sizes; it should not grow with the database.

Each backup runs in a fresh child Python process (``_backup_child.py``) into its own new
repository, so neither dedup nor anything the parent has allocated can flatter or inflate the
numbers.  The child reports its own peak (see there why not ``ru_maxrss``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import MB, Result, ratio

PASSWORD_ENV = "GOCDBACKUP_PASSWORD"  # what the child's GocdBackup reads (documented)
CHILD = Path(__file__).with_name("_backup_child.py")
#: "flat": the larger database may cost at most 10% more memory
FLATNESS_TARGET = 1.10


def child_backup(repo_dir: Path, dsn: str, password: str) -> dict[str, Any]:
    env = {**os.environ, PASSWORD_ENV: password}
    proc = subprocess.run(
        [sys.executable, str(CHILD), f"file://{repo_dir}", dsn],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise RuntimeError(f"backup child exited with {proc.returncode}:\n{tail}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def run(
    dsn_full: str, size_full: int, dsn_half: str, size_half: int, workdir: Path, password: str
) -> list[Result]:
    measured = {}
    for name, dsn, size in (("half", dsn_half, size_half), ("full", dsn_full, size_full)):
        m = child_backup(workdir / f"repo-rss-{name}", dsn, password)
        measured[name] = m
        print(
            f"  {name} ({size / MB:.0f} MB database, {m['size_bytes'] / MB:.0f} MB dump):"
            f" peak RSS during the backup {m['peak_kib'] / 1024:.0f} MiB"
            f" (RSS {m['rss_before_kib'] / 1024:.0f} MiB before it,"
            f" {m['startup_peak_kib'] / 1024:.0f} MiB peak while starting), {m['seconds']:.2f} s"
        )
    full = measured["full"]["peak_kib"] * 1024
    half = measured["half"]["peak_kib"] * 1024
    scope = "backup only" if measured["full"]["peak_is_backup_only"] else "whole process"
    return [
        Result(
            f"peak RSS, {size_full / MB:.0f} MB ÷ {size_half / MB:.0f} MB database",
            full,
            half,
            ratio(full, half),
            unit="B",
            target=FLATNESS_TARGET,
            note=f"VmHWM of the child Python process ({scope}); pg_dump not included",
        ),
    ]
