"""Shards of an orphan scan, the pure core: the key space cut into contiguous ranges, and the
reports of the ranges merged into one.

A scan shards by key range rather than by a hash of the key (as a backup's copy does): a
range is listed by its own requests (from its lower bound, stopping past its upper one), so N
shards list the bucket once between them, where hash shards would each list all of it.  The
bounds are quantiles of a sample of the database's keys: most objects have a row, so shards
get about equal shares of both sides."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from attrs import frozen

from gocdbackup.errors import ConfigError, ReportMismatch
from gocdbackup.model.orphan_report import OrphanReport, RowBuffer
from gocdbackup.model.shards import check_shards


@frozen(kw_only=True)
class KeyRange:
    """The keys ``after < key <= until`` (``until`` None: no upper bound)."""

    after: str = ""
    until: str | None = None

    def holds(self, key: str) -> bool:
        return key > self.after and (self.until is None or key <= self.until)


def key_ranges(sample: Sequence[str], shards: int) -> list[KeyRange]:
    """``shards`` contiguous ranges covering every key, cut at quantiles of ``sample`` (keys
    in any order, repeats allowed).  Fewer ranges where the sample has too few distinct keys
    to cut at (an empty database: one range)."""
    check_shards(shards)
    keys = sorted(set(sample))
    cuts: list[str] = []
    for n in range(1, shards):
        if not keys:
            break
        cut = keys[min(len(keys) - 1, n * len(keys) // shards)]
        if not cuts or cut > cuts[-1]:
            cuts.append(cut)
    bounds: list[str | None] = [*cuts, None]
    lows = ["", *cuts]
    return [KeyRange(after=lo, until=hi) for lo, hi in zip(lows, bounds, strict=True)]


def merged(
    parts: Sequence[OrphanReport], *, scanned_at: datetime, spool: RowBuffer
) -> OrphanReport:
    """One report of the scans of ``parts`` (the ranges of one sharded scan, in key order):
    counts and bytes summed, rows one after the other (already in key order), ``spool``
    filled with them.  Every part must be complete, of the same database and store, taken at
    the same time with the same rules."""
    if not parts:
        raise ConfigError("there are no shard reports to merge")
    first = parts[0]
    for part in parts:
        if not part.complete:
            raise ReportMismatch(f"shard report {part.id} is incomplete: it cannot be merged")
        same = (part.source, part.scanned_at, part.grace, part.verify_percent, part.listing)
        if same != (first.source, scanned_at, first.grace, first.verify_percent, first.listing):
            raise ReportMismatch(f"shard report {part.id} belongs to another scan")
    counts: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for part in parts:
        for cls, n in part.counts.items():
            counts[cls] = counts.get(cls, 0) + n
        for cls, n in part.bytes.items():
            sizes[cls] = sizes.get(cls, 0) + n
        spool.extend(part.rows())
    fingerprint = hashlib.sha256("|".join(p.id for p in parts).encode()).hexdigest()[:8]
    return OrphanReport(
        id=f"orph-{scanned_at:%Y%m%dT%H%M%SZ}-{fingerprint}",
        scanned_at=scanned_at,
        grace=first.grace,
        source=first.source,
        counts=counts,
        bytes=sizes,
        complete=True,
        cursor=max((p.cursor for p in parts), default=""),
        verify_percent=first.verify_percent,
        store_objects=sum(p.store_objects or 0 for p in parts),
        spool=spool,
        listing=first.listing,
        listed_at=first.listed_at,
    )
