"""Where a sharded orphan scan cuts the key space: quantiles of a uniform sample of the
database's keys, read in one pass (reservoir sampling: memory of the sample only)."""

from __future__ import annotations

import random

from gocdbackup.context import OpContext
from gocdbackup.model.scan_shards import KeyRange, key_ranges
from gocdbackup.ports import GocdnextData

#: keys sampled to place the cuts (about 1 % imbalance between shards)
SAMPLE = 10_000


def plan_ranges(
    db: GocdnextData, shards: int, *, ctx: OpContext, sample: int = SAMPLE, seed: int = 0
) -> list[KeyRange]:
    """``shards`` key ranges with about equal numbers of the database's keys each."""
    rnd = random.Random(seed)  # noqa: S311 - where to cut, not a secret
    kept: list[str] = []
    seen = 0
    rows = db.object_rows()
    try:
        for row in rows:
            seen += 1
            if len(kept) < sample:
                kept.append(row.key)
            elif (slot := rnd.randrange(seen)) < sample:
                kept[slot] = row.key
            if seen % 100_000 == 0:
                ctx.check()
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    return key_ranges(kept, shards)
