"""Garbage collection, decided purely: which blobs no manifest references, and which of those
are old enough to delete."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Iterator, Set
from datetime import datetime, timedelta
from typing import Any

from attrs import field, frozen

from gocdbackup.errors import OutOfOrder
from gocdbackup.model._validate import aware
from gocdbackup.model.durations import format_duration
from gocdbackup.model.render import human_bytes, kv_table


@frozen(kw_only=True)
class BlobInfo:
    blob_id: str
    size_bytes: int
    modified_at: datetime | None  # None: the store cannot say; such a blob is never collected


#: blob ids a plan shows as examples of what it deletes
SAMPLE = 10


@frozen(kw_only=True)
class GcPlan:
    """What a garbage collection at ``now`` with ``grace`` deletes: counts and bytes (the
    blobs themselves are streamed, never held: memory stays flat however many there are)."""

    id: str
    now: datetime = field(validator=aware)
    grace: timedelta
    blobs: int  # every blob in the repository
    referenced: int
    to_delete: int  # unreferenced and older than the grace period
    reclaimable_bytes: int
    too_recent: int  # unreferenced, but maybe a backup in progress wrote them (or of no age)
    too_recent_bytes: int
    #: the first few blob ids to delete, in order (examples for people)
    sample: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "now": self.now.isoformat(),
            "grace": format_duration(self.grace),
            "blobs": self.blobs,
            "referenced": self.referenced,
            "unreferenced": self.to_delete + self.too_recent,
            "to_delete": self.to_delete,
            "reclaimable_bytes": self.reclaimable_bytes,
            "too_recent": self.too_recent,
            "too_recent_bytes": self.too_recent_bytes,
        }

    def __repr__(self) -> str:
        return (
            f"<GcPlan {self.id}: delete {self.to_delete} of {self.blobs} blobs "
            f"({human_bytes(self.reclaimable_bytes)}), {self.too_recent} too recent>"
        )

    def _repr_html_(self) -> str:
        return kv_table(self.summary().items(), caption="garbage collection plan")


class Verdict(enum.Enum):
    KEEP = "keep"  # referenced
    DELETE = "delete"  # unreferenced, older than the grace period
    TOO_RECENT = "too_recent"  # unreferenced, younger (or of unknown age)


class GcTally:
    """Counts, bytes and the plan id of :func:`judge_blobs`'s verdicts, as they stream by."""

    def __init__(self, now: datetime, grace: timedelta) -> None:
        self.now, self.grace = now, grace
        self.blobs = self.referenced = self.to_delete = self.too_recent = 0
        self.reclaimable_bytes = self.too_recent_bytes = 0
        self.sample: list[str] = []
        self._digest = hashlib.sha256(f"{now.isoformat()}|{grace}".encode())

    def add(self, blob: BlobInfo, verdict: Verdict) -> None:
        self.blobs += 1
        if verdict is Verdict.KEEP:
            self.referenced += 1
        elif verdict is Verdict.DELETE:
            self.to_delete += 1
            self.reclaimable_bytes += blob.size_bytes
            self._digest.update(blob.blob_id.encode())
            if len(self.sample) < SAMPLE:
                self.sample.append(blob.blob_id)
        else:
            self.too_recent += 1
            self.too_recent_bytes += blob.size_bytes

    def plan(self) -> GcPlan:
        return GcPlan(
            id=self._digest.hexdigest()[:12],
            now=self.now,
            grace=self.grace,
            blobs=self.blobs,
            referenced=self.referenced,
            to_delete=self.to_delete,
            reclaimable_bytes=self.reclaimable_bytes,
            too_recent=self.too_recent,
            too_recent_bytes=self.too_recent_bytes,
            sample=tuple(self.sample),
        )


def judge_blobs(
    blobs: Iterable[BlobInfo], referenced: Iterable[str], tally: GcTally
) -> Iterator[tuple[BlobInfo, Verdict]]:
    """Every blob's verdict, counted in ``tally``: one merge of the blobs (in id order, as the
    repository lists them) with the referenced ids (in order, repeats allowed), in constant
    memory.  A blob of unknown age is never deleted.  Either stream out of order raises
    :class:`~gocdbackup.errors.OutOfOrder` before any verdict about the out-of-order id."""
    cutoff = tally.now - tally.grace
    refs = _checked(referenced)
    ref = next(refs, None)
    last = ""
    for blob in blobs:
        bid = blob.blob_id
        if bid <= last:
            raise OutOfOrder(f"the repository's blobs are not listed in order at {bid!r}")
        last = bid
        while ref is not None and ref < bid:
            ref = next(refs, None)
        if ref == bid:
            verdict = Verdict.KEEP
        elif blob.modified_at is not None and blob.modified_at <= cutoff:
            verdict = Verdict.DELETE
        else:
            verdict = Verdict.TOO_RECENT
        tally.add(blob, verdict)
        yield blob, verdict


def _checked(ids: Iterable[str]) -> Iterator[str]:
    """``ids``, each given only once the one after it is known to be no smaller (so no verdict
    is ever reached against an id an out-of-order successor would have contradicted)."""
    it = iter(ids)
    held = next(it, None)
    if held is None:
        return
    for following in it:
        if following < held:
            raise OutOfOrder(f"the referenced blob ids are not in order at {following!r}")
        yield held
        held = following
    yield held


def plan_gc(
    blobs: Iterable[BlobInfo], referenced: Set[str], *, now: datetime, grace: timedelta
) -> GcPlan:
    """The plan for ``blobs`` (any order) against a set of referenced ids, held in memory:
    the pure form of what :func:`~gocdbackup.ops.gc.collect_garbage` streams."""
    tally = GcTally(now, grace)
    ordered = sorted(blobs, key=lambda b: b.blob_id)
    for _ in judge_blobs(ordered, sorted(referenced), tally):
        pass
    return tally.plan()


@frozen(kw_only=True)
class GcResult:
    plan: GcPlan
    dry_run: bool
    deleted: int
    deleted_bytes: int

    def summary(self) -> dict[str, Any]:
        return {
            **self.plan.summary(),
            "dry_run": self.dry_run,
            "deleted": self.deleted,
            "deleted_bytes": self.deleted_bytes,
        }

    def _repr_html_(self) -> str:
        return self.plan._repr_html_()
