"""scan_orphans: the two-way report between gocdnext's database and its artefact store, read in
one streaming pass over both (bounded memory, resumable, rate-limited)."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from gocdbackup.context import OpContext
from gocdbackup.errors import (
    ConfigError,
    GocdBackupError,
    ObjectMissing,
    ReportMismatch,
    ScanInterrupted,
    StoreNotFound,
)
from gocdbackup.model.orphan_report import MemoryRows, OrphanReport, RowBuffer, ScanSource
from gocdbackup.model.orphans import Listed, OrphanClass, RowRef, ScanRules, Tally, classify
from gocdbackup.model.scan_shards import KeyRange
from gocdbackup.ops._objects import object_sha256
from gocdbackup.ops.fresh_looks import FreshLooks
from gocdbackup.ports import GocdnextData, ObjectInfo, ObjectListing, ObjectStore

log = logging.getLogger("gocdbackup.ops.orphans")


class _Keyed(Protocol):
    @property
    def key(self) -> str: ...


_K = TypeVar("_K", bound=_Keyed)

#: where cleanups put quarantined objects (in the artefact store itself, by default); gocdnext
#: never lists its store, so it never sees them, and scans skip them
QUARANTINE_PREFIX = ".gocdbackup-quarantine/"
DEFAULT_GRACE = timedelta(hours=6)
#: a listing page: what one LIST request returns on S3 and GCS
PAGE = 1000
_REPORT_EVERY = 5000


class Pacer:
    """At most ``rate`` requests per second (None: no limit)."""

    def __init__(
        self,
        rate: float | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("the rate limit must be positive")
        self._interval = 1.0 / rate if rate else 0.0
        self._sleep, self._monotonic = sleep, monotonic
        self._next = 0.0
        self.requests = 0

    def request(self) -> None:
        self.requests += 1
        if not self._interval:
            return
        now = self._monotonic()
        if now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self._interval


def _paced(
    objects: Iterator[ObjectInfo], pacer: Pacer | None, ctx: OpContext, tally: Tally
) -> Iterator[ObjectInfo]:
    """The listing, one paced request per page (no pacer: an inventory, read without
    requests to the store); quarantined copies are skipped."""
    n = 0
    if pacer is not None:
        pacer.request()
    for info in objects:
        n += 1
        if n % PAGE == 0:
            if pacer is not None:
                pacer.request()
            ctx.check()
        if n % _REPORT_EVERY == 0:
            ctx.report("orphans-scan", tally.total, None, unit="keys", message=info.key)
        if info.key.startswith(QUARANTINE_PREFIX):
            continue
        tally.objects += 1
        yield info


def _sampler(percent: float, seed: str) -> Callable[[str], bool]:
    """A deterministic ``percent`` % sample of keys (the same keys for the same seed)."""
    if percent >= 100:
        return lambda _key: True
    threshold = int(percent / 100 * 2**32)

    def chosen(key: str) -> bool:
        h = hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=4).digest()
        return int.from_bytes(h, "big") < threshold

    return chosen


def _content_verifier(
    store: ObjectStore, percent: float, seed: str, pacer: Pacer
) -> Callable[[RowRef, Listed], bool | None] | None:
    if percent <= 0:
        return None
    chosen = _sampler(percent, seed)

    def verify(row: RowRef, obj: Listed) -> bool | None:
        if not chosen(row.key):
            return None
        pacer.request()
        try:
            return object_sha256(store, row.key, obj.size_bytes) == row.sha256
        except ObjectMissing:
            return None  # deleted meanwhile: the next scan will say so

    return verify


def scan_orphans(
    db: GocdnextData,
    store: ObjectStore,
    *,
    ctx: OpContext,
    grace: timedelta = DEFAULT_GRACE,
    verify_content: float = 0.0,
    rate_limit: float | None = None,
    resume: OrphanReport | None = None,
    keep_ok: bool = False,
    pacer: Pacer | None = None,
    rows_buffer: Callable[[], RowBuffer] = MemoryRows,
    listing: ObjectListing | None = None,
    key_range: KeyRange | None = None,
    now: datetime | None = None,
) -> OrphanReport:
    """Classify every key the database references and every object the store holds (see
    :class:`~gocdbackup.model.orphans.OrphanClass`): one merge of two key-ordered streams, in
    bounded memory.  Read-only.

    ``verify_content`` reads that percentage of the objects that have a row with a SHA-256
    (a deterministic sample) and reports ``sha_mismatch``; ``rate_limit`` caps store requests
    per second.  An interrupted scan raises :class:`~gocdbackup.errors.ScanInterrupted` whose
    ``report`` is incomplete; pass it as ``resume`` to continue after its cursor.
    ``rows_buffer`` makes the buffer the findings go to (memory by default; the facade
    passes one that spills to a temporary file).

    ``listing`` (a bucket inventory) is read instead of listing the store.  It cannot know of
    objects written after it was taken: the key of every row written since, and of every row
    it does not hold, is looked up in the store (:class:`~gocdbackup.ops.fresh_looks.FreshLooks`),
    and objects written later without a row are not seen (the report says when the listing
    was taken).

    ``key_range`` limits the scan to one shard's keys (both sides; the store is listed from
    the range's start and no further than its end); ``now`` is the scan's time (default: the
    context's clock), the same for every shard of one scan."""
    if grace < timedelta(0):
        raise ConfigError("the grace window cannot be negative")
    if not 0 <= verify_content <= 100:
        raise ConfigError("verify_content is a percentage between 0 and 100")
    source = ScanSource(database=db.source_id(), store=store.url)
    if not store.location_exists():
        raise StoreNotFound(
            f"the artefact store {store.url} does not exist (no such directory or bucket): "
            "check the URL; nothing was scanned"
        )
    now = now or ctx.now()
    listed_from = listing.url if listing is not None else ""
    if resume is not None:
        _check_resumable(resume, source, listed_from)
        now, grace, verify_content = resume.scanned_at, resume.grace, resume.verify_percent
    pacer = pacer or Pacer(rate_limit)
    tally, spool = Tally(), rows_buffer()
    if resume is not None:
        _carry_over(resume, tally, spool)
    elif key_range is not None:
        tally.cursor = key_range.after
    cursor = tally.cursor
    rules = ScanRules(
        now=now,
        grace=grace,
        partial_uploads=store.url.startswith("file:"),
        keep_ok=keep_ok,
    )
    seed = f"{source.database}|{source.store}|{now.isoformat()}"
    verify = _content_verifier(store, verify_content, seed, pacer)
    ctx.report("orphans-scan", tally.total, None, unit="keys")
    db_rows = db.object_rows(cursor)
    until = key_range.until if key_range is not None else None
    rows, objects, looks = _streams(db_rows, store, listing, cursor, until, pacer, ctx, tally)
    merged = classify(
        rows, objects, rules, tally, verify=verify, recheck=looks.recheck if looks else None
    )
    try:
        for row in merged:
            spool.append(row)
    except (GocdBackupError, KeyboardInterrupt) as exc:
        merged.close()  # settles the tally (counts and cursor) before it is reported
        if not tally.total and resume is None:
            raise  # nothing was classified: the error itself says it best
        partial = _report(
            source, rules, tally, spool, verify_content, listing=listing, complete=False
        )
        raise ScanInterrupted(
            f"the orphan scan stopped after {tally.total} keys (at {tally.cursor!r}): {exc}",
            partial,
        ) from exc
    finally:
        if looks is not None:
            looks.close()
        close = getattr(db_rows, "close", None)
        if close is not None:
            close()
    report = _report(source, rules, tally, spool, verify_content, listing=listing, complete=True)
    ctx.report("orphans-scan", tally.total, tally.total, unit="keys")
    log.info("orphan scan %s: %s", report.id, {k: v for k, v in report.counts.items() if v})
    return report


def _streams(  # noqa: PLR0917 - the two sides of one scan, wired together
    db_rows: Iterable[RowRef],
    store: ObjectStore,
    listing: ObjectListing | None,
    cursor: str,
    until: str | None,
    pacer: Pacer,
    ctx: OpContext,
    tally: Tally,
) -> tuple[Iterator[RowRef], Iterator[ObjectInfo], FreshLooks | None]:
    """The rows and the objects the merge reads: the store's listing, or ``listing`` with
    what it cannot know looked up (:class:`FreshLooks`); both within the range."""
    in_range = _upto(iter(db_rows), until)
    if listing is None:
        objects = _paced(_upto(iter(store.scan("", cursor)), until), pacer, ctx, tally)
        return in_range, objects, None
    looks = FreshLooks(in_range, store, listing.taken_at, pacer.request)
    listed = _upto(iter(listing.scan(cursor)), until)
    return looks.rows(), _paced(looks.objects(listed), None, ctx, tally), looks


def _upto(items: Iterator[_K], until: str | None) -> Iterator[_K]:
    """``items`` (key-ordered) up to and including the key ``until`` (None: all of them)."""
    if until is None:
        return items
    return itertools.takewhile(lambda item: item.key <= until, items)


def _carry_over(resume: OrphanReport, tally: Tally, spool: RowBuffer) -> None:
    """What an interrupted scan found, for its resumption to go on from."""
    spool.extend(resume.rows())
    for cls in OrphanClass:
        tally.counts[cls] = resume.counts.get(cls.value, 0)
        tally.bytes[cls] = resume.bytes.get(cls.value, 0)
    tally.cursor = resume.cursor
    tally.objects = resume.store_objects or 0


def _check_resumable(resume: OrphanReport, source: ScanSource, listed_from: str) -> None:
    if resume.complete:
        raise ReportMismatch(f"report {resume.id} is complete: there is nothing to resume")
    if resume.source != source:
        raise ReportMismatch(
            f"report {resume.id} was made for {resume.source.store} and "
            f"{resume.source.database}, not {source.store} and {source.database}"
        )
    if resume.listing != listed_from:
        was = f"the listing {resume.listing}" if resume.listing else "a listing of the store"
        how = f"with --listing {resume.listing}" if resume.listing else "without --listing"
        raise ReportMismatch(f"report {resume.id} was made from {was}: resume it {how}")


def _report(
    source: ScanSource,
    rules: ScanRules,
    tally: Tally,
    spool: RowBuffer,
    verify_percent: float,
    *,
    listing: ObjectListing | None,
    complete: bool,
) -> OrphanReport:
    fingerprint = hashlib.sha256(
        f"{source}|{rules.now.isoformat()}|{tally.cursor}|{spool.digest}|{tally.counts}".encode()
    ).hexdigest()[:6]
    return OrphanReport(
        id=f"orph-{rules.now:%Y%m%dT%H%M%SZ}-{fingerprint}{os.urandom(1).hex()}",
        scanned_at=rules.now,
        grace=rules.grace,
        source=source,
        counts={c.value: n for c, n in tally.counts.items()},
        bytes={c.value: n for c, n in tally.bytes.items()},
        complete=complete,
        cursor=tally.cursor,
        verify_percent=verify_percent,
        store_objects=tally.objects,
        spool=spool,
        listing=listing.url if listing is not None else "",
        listed_at=listing.taken_at if listing is not None else None,
    )
