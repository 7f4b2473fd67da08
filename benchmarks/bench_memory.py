"""Peak RSS of a backup process at two database sizes; it should not grow with the database.

Each backup runs in a fresh child Python process (``_backup_child.py``) into its own new
repository, so neither dedup nor anything the parent has allocated can flatter or inflate the
numbers.  The child reports its own peak (see there why not ``ru_maxrss``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _common import MB, Result, child_json, median, ratio, seconds_list

CHILD = Path(__file__).with_name("_backup_child.py")
#: "flat": the larger database may cost at most 10% more memory
FLATNESS_TARGET = 1.10


def child_backup(repo_dir: Path, dsn: str, password: str) -> dict[str, Any]:
    return child_json(CHILD, f"file://{repo_dir}", dsn, password=password)


def _mb(kib: float) -> str:
    return f"{kib * 1024 / MB:.1f}"


def run(
    dsn_full: str,
    size_full: int,
    dsn_half: str,
    size_half: int,
    workdir: Path,
    password: str,
    *,
    repeat: int,
) -> list[Result]:
    """The peak is a maximum over the run, so it creeps up a little with the number of chunks
    (more chances for several maximum-size chunks to be in flight at once); each size is
    measured ``repeat`` times, alternating, and the medians are compared."""
    sizes = {"half": (dsn_half, size_half), "full": (dsn_full, size_full)}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sizes}
    for n in range(repeat):
        for name, (dsn, _) in sizes.items():
            runs[name].append(child_backup(workdir / f"repo-rss-{name}-{n}", dsn, password))
    peaks: dict[str, float] = {}
    for name, (_, size) in sizes.items():
        ms = runs[name]
        peaks[name] = median([m["peak_kib"] for m in ms])
        print(
            f"  {name} ({size / MB:.0f} MB database, {ms[0]['size_bytes'] / MB:.0f} MB dump):"
            f" peak RSS during the backup {', '.join(_mb(m['peak_kib']) for m in ms)} MB"
            f" (RSS before it {_mb(ms[0]['rss_before_kib'])} MB, peak while starting"
            f" {_mb(ms[0]['startup_peak_kib'])} MB); {seconds_list([m['seconds'] for m in ms])}"
        )
    full, half = peaks["full"] * 1024, peaks["half"] * 1024
    scope = "backup only" if all(m["peak_is_backup_only"] for m in runs["full"]) else "whole run"
    return [
        Result(
            f"peak RSS, {size_full / MB:.0f} MB ÷ {size_half / MB:.0f} MB database",
            full,
            half,
            ratio(full, half),
            unit="B",
            target=FLATNESS_TARGET,
            note=f"medians of {repeat}; VmHWM of the child Python process ({scope});"
            " pg_dump not included",
        ),
    ]
