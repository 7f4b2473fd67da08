"""PostgreSQL's write-ahead log as the repository keeps it: one entry per archived file (a
segment, a timeline's history, a backup's label, a partial segment), and the check that finds
gaps in each timeline's run of segments.

Facts of PostgreSQL's naming used here: a segment is named by 24 hex digits, the timeline
(8), then the segment number split in two (8 and 8: the high part counts 4 GiB of WAL, the
low part the segments within it); ``<timeline>.history`` holds a timeline's ancestry;
``<segment>.<offset>.backup`` a base backup's label; ``<segment>.partial`` the last segment
of a timeline that was left for another.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise
from typing import Any

from attrs import frozen

from gocdbackup.errors import ConfigError
from gocdbackup.model.backup import ChunkRef
from gocdbackup.model.render import kv_table

_SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
_NAME = re.compile(r"^(?:[0-9A-F]{24}(?:\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$")
_GIB4 = 0x1_0000_0000
DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024


def check_wal_name(name: str) -> str:
    """``name`` if it is a WAL file's name PostgreSQL archives; else :class:`ConfigError`."""
    if not _NAME.match(name):
        raise ConfigError(
            f"{name!r} is not the name of a WAL file (24 hex digits, optionally .partial or "
            ".<offset>.backup, or <timeline>.history); nothing was archived"
        )
    return name


def segment_number(name: str, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> tuple[int, int]:
    """(timeline, segment number) of a segment's name."""
    found = _SEGMENT.match(name)
    if found is None:
        raise ValueError(f"{name!r} is not a segment's name")
    tli, high, low = (int(g, 16) for g in found.groups())
    return tli, high * (_GIB4 // segment_bytes) + low


def segment_name(timeline: int, number: int, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> str:
    per = _GIB4 // segment_bytes
    return f"{timeline:08X}{number // per:08X}{number % per:08X}"


def lsn_segment(lsn: str, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> int:
    """The number of the segment holding ``lsn`` (``X/Y``, PostgreSQL's notation)."""
    high, low = lsn.split("/")
    return ((int(high, 16) << 32) | int(low, 16)) // segment_bytes


def prunable(
    names: Sequence[str], keep_from: int, segment_bytes: int = DEFAULT_SEGMENT_BYTES
) -> list[str]:
    """The WAL files (segments, their ``.partial`` and ``.backup`` files) of segments before
    ``keep_from``, on any timeline: what no recovery from a base backup consistent in segment
    ``keep_from`` or later reads.  Timelines' history files are always kept."""
    out = []
    for name in names:
        if not _SEGMENT.match(name[:24]) or name.endswith(".history"):
            continue
        if segment_number(name[:24], segment_bytes)[1] < keep_from:
            out.append(name)
    return out


@frozen(kw_only=True)
class WalEntry:
    """One archived WAL file: its bytes are ``chunks`` (blobs of the repository)."""

    name: str
    size: int
    sha256: str
    chunks: tuple[ChunkRef, ...]
    pushed_at: datetime

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "kind": "gocdbackup.wal",
                "name": self.name,
                "size": self.size,
                "sha256": self.sha256,
                "pushed_at": self.pushed_at.isoformat(),
                "chunks": [[c.blob_id, c.size_bytes, c.stored_bytes] for c in self.chunks],
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> WalEntry:
        d = json.loads(data)
        if d.get("kind") != "gocdbackup.wal":
            raise ValueError("not a WAL entry")
        return cls(
            name=str(d["name"]),
            size=int(d["size"]),
            sha256=str(d["sha256"]),
            pushed_at=datetime.fromisoformat(d["pushed_at"]),
            chunks=tuple(
                ChunkRef(blob_id=b, size_bytes=int(n), stored_bytes=int(s))
                for b, n, s in d["chunks"]
            ),
        )


@frozen(kw_only=True)
class TimelineRun:
    """The segments of one timeline in the archive."""

    timeline: int
    first: str
    last: str
    segments: int


@frozen(kw_only=True)
class WalGap:
    """Segments ``first`` to ``last`` of ``timeline`` are missing."""

    timeline: int
    first: str
    last: str
    missing: int

    def __str__(self) -> str:
        if self.missing == 1:
            return f"timeline {self.timeline}: segment {self.first} is missing"
        return (
            f"timeline {self.timeline}: {self.missing} segments missing, "
            f"{self.first} to {self.last}"
        )


@frozen(kw_only=True)
class WalReport:
    """What ``wal verify`` found: each timeline's run, the gaps in them, and entries whose
    blobs are missing (``damaged``)."""

    timelines: tuple[TimelineRun, ...]
    gaps: tuple[WalGap, ...]
    damaged: tuple[str, ...] = ()
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.gaps and not self.damaged

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": self.files,
            "timelines": [
                {"timeline": t.timeline, "first": t.first, "last": t.last, "segments": t.segments}
                for t in self.timelines
            ],
            "gaps": [
                {"timeline": g.timeline, "first": g.first, "last": g.last, "missing": g.missing}
                for g in self.gaps
            ],
            "damaged": list(self.damaged),
        }

    def _repr_html_(self) -> str:
        return kv_table(self.summary().items(), caption="WAL archive")


def check_archive(
    names: Sequence[str],
    damaged: Sequence[str] = (),
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
) -> WalReport:
    """Each timeline's segments from its first to its last, and every hole between."""
    by_timeline: dict[int, list[int]] = {}
    for name in names:
        if _SEGMENT.match(name):
            tli, number = segment_number(name, segment_bytes)
            by_timeline.setdefault(tli, []).append(number)
    runs, gaps = [], []
    for tli in sorted(by_timeline):
        numbers = sorted(set(by_timeline[tli]))
        runs.append(
            TimelineRun(
                timeline=tli,
                first=segment_name(tli, numbers[0], segment_bytes),
                last=segment_name(tli, numbers[-1], segment_bytes),
                segments=len(numbers),
            )
        )
        for a, b in pairwise(numbers):
            if b > a + 1:
                gaps.append(
                    WalGap(
                        timeline=tli,
                        first=segment_name(tli, a + 1, segment_bytes),
                        last=segment_name(tli, b - 1, segment_bytes),
                        missing=b - a - 1,
                    )
                )
    return WalReport(
        timelines=tuple(runs), gaps=tuple(gaps), damaged=tuple(sorted(damaged)), files=len(names)
    )
