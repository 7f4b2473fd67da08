"""Sharded orphan scans from Python: the key space cut into ranges at quantiles of the
database's keys (:func:`gocdbackup.ops.scan_shards.plan_ranges`), each range scanned in a
worker process of its own (its own connections; it lists only its range of the bucket, or
reads only its range of an inventory), the reports merged into one
(:func:`gocdbackup.model.scan_shards.merged`)."""

from __future__ import annotations

import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from attrs import frozen

from gocdbackup._wiring import inventory_of, postgres_server
from gocdbackup.context import OpContext
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.postgres import GocdnextTables
from gocdbackup.drivers.report_files import TempFileRows, load_report, save_report
from gocdbackup.errors import ConfigError, GocdBackupError, StoreNotFound
from gocdbackup.model.orphan_report import OrphanReport
from gocdbackup.model.scan_shards import KeyRange, merged
from gocdbackup.model.shards import check_shards
from gocdbackup.ops.orphans import scan_orphans
from gocdbackup.ops.scan_shards import plan_ranges
from gocdbackup.ports import GocdnextData


@frozen(kw_only=True)
class ScanSpec:
    """How a worker process opens the scan's database and store: their URLs (None where the
    caller gave objects, which cannot travel to another process)."""

    db: str | None
    artifacts: str | None
    options: dict[str, Any]
    pg_bindir: str | None = None

    def __repr__(self) -> str:  # the DSN may carry a password: never shown
        return "ScanSpec(...)"


def _worker(  # noqa: PLR0917 - handed over as a pickled call to another process
    spec: ScanSpec,
    key_range: KeyRange,
    now: datetime,
    grace: timedelta,
    verify_content: float,
    rate_limit: float | None,
    listing: str | None,
    out: str,
) -> str:
    """One key range in a process of its own; its report saved at ``out``."""
    assert spec.db is not None
    assert spec.artifacts is not None
    db = GocdnextTables(postgres_server(spec.db, bindir=spec.pg_bindir))
    store = FsspecStore(spec.artifacts, spec.options)
    inventory = inventory_of(listing, store, spec.options) if listing else None
    report = scan_orphans(
        db,
        store,
        ctx=OpContext(),
        grace=grace,
        verify_content=verify_content,
        rate_limit=rate_limit,
        rows_buffer=TempFileRows,
        listing=inventory,
        key_range=key_range,
        now=now,
    )
    save_report(report, out)
    return out


def scan_sharded(
    spec: ScanSpec,
    db: GocdnextData,
    shards: int,
    *,
    ctx: OpContext,
    grace: timedelta,
    verify_content: float = 0.0,
    rate_limit: float | None = None,
    listing: str | None = None,
) -> OrphanReport:
    """The report of one scan run as ``shards`` key ranges in worker processes (``rate_limit``
    is shared out between them).  A shard that fails fails the scan, naming it: nothing is
    merged from a scan with a gap."""
    check_shards(shards)
    if spec.db is None or spec.artifacts is None:
        raise ConfigError(
            "a sharded scan opens the database and the store again in each worker: give both "
            "by URL (a DSN and a store URL)"
        )
    store = FsspecStore(spec.artifacts, spec.options)
    if "memory" in store.protocols:
        raise ConfigError("worker processes cannot reach an in-memory store: use shards=1")
    if not store.location_exists():
        raise StoreNotFound(
            f"the artefact store {store.url} does not exist (no such directory or bucket): "
            "check the URL; nothing was scanned"
        )
    if listing:
        inventory_of(listing, store, spec.options)  # refused here, not N times
    ranges = plan_ranges(db, shards, ctx=ctx)
    now = ctx.now()
    share = rate_limit / len(ranges) if rate_limit else None
    failures: list[str] = []
    ctx.report("orphans-scan-shards", 0, len(ranges), unit="shards")
    with tempfile.TemporaryDirectory(prefix="gocdbackup-scan-") as tmp:
        outs = [str(Path(tmp) / f"shard-{n}.jsonl") for n in range(len(ranges))]
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=len(ranges), mp_context=spawn) as pool:
            futures = {
                pool.submit(
                    _worker, spec, r, now, grace, verify_content, share, listing, outs[n]
                ): n
                for n, r in enumerate(ranges)
            }
            for done, future in enumerate(as_completed(futures), start=1):
                try:
                    future.result()
                except Exception as exc:
                    failures.append(f"shard {futures[future]}: {exc}")
                ctx.report("orphans-scan-shards", done, len(ranges), unit="shards")
        if failures:
            raise GocdBackupError(
                f"{len(failures)} of {len(ranges)} scan shard(s) failed "
                f"({'; '.join(sorted(failures))}); nothing was merged: scan again"
            )
        parts = [load_report(out) for out in outs]
        return merged(parts, scanned_at=now, spool=TempFileRows())
