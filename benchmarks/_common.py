"""Shared pieces of the benchmarks: the result row, a timer, the summary table."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MB = 1_000_000


@dataclass(frozen=True)
class Result:
    """One line of the summary: ``value`` measured against a ``baseline`` of the same run.

    ``ratio`` is value ÷ baseline (or the value itself when it already is a ratio).  A target
    reads "ratio ≤ target" unless ``higher_is_better``; ``target=None`` means report only.
    """

    metric: str
    value: float
    baseline: float | None
    ratio: float
    unit: str = ""
    target: float | None = None
    higher_is_better: bool = False
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.higher_is_better:
            return self.ratio >= self.target
        return self.ratio <= self.target

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'≥' if self.higher_is_better else '≤'} {self.target:g}"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("inf")


@contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` then ``t[0]`` is the wall time in seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def seconds_list(xs: Sequence[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs) + " s"


def run_quiet(args: Sequence[str]) -> None:
    """Run a tool; on failure raise with the tail of its stderr (no connection secrets are
    passed on command lines, so the message is safe to show)."""
    proc = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{args[0]} exited with {proc.returncode}: {tail}")


def child_json(script: Path, *args: str, password: str) -> dict[str, Any]:
    """Run a benchmark child (``python script args...``, the repository passphrase in
    ``GOCDBACKUP_PASSWORD``, never on its command line): the JSON of its last stdout line."""
    env = {**os.environ, "GOCDBACKUP_PASSWORD": password}
    proc = subprocess.run(
        [sys.executable, str(script), *args], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise RuntimeError(f"{script.name} exited with {proc.returncode}:\n{tail}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _fmt(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    if unit == "s":
        return f"{x:.2f} s"
    if unit == "B":
        return f"{x / MB:.1f} MB"
    return f"{x:.3f}"


def table(results: Sequence[Result]) -> str:
    header = ("metric", "value", "baseline", "ratio", "target", "met")
    rows = [header]
    for r in results:
        met = {None: "n/a", True: "yes", False: "NO"}[r.met]
        rows.append(
            (
                r.metric,
                _fmt(r.value, r.unit),
                _fmt(r.baseline, r.unit),
                f"{r.ratio:.3f}",
                r.target_text(),
                met,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
