"""Garbage collection, decided purely: which blobs no manifest references, and which of those
are old enough to delete."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Set
from datetime import datetime, timedelta
from typing import Any

from attrs import field, frozen

from gocdbackup.model._validate import aware
from gocdbackup.model.durations import format_duration
from gocdbackup.model.render import human_bytes, kv_table


@frozen(kw_only=True)
class BlobInfo:
    blob_id: str
    size_bytes: int
    modified_at: datetime | None  # None: the store cannot say; such a blob is never collected


@frozen(kw_only=True)
class GcPlan:
    """What a garbage collection at ``now`` with ``grace`` would delete."""

    id: str
    now: datetime = field(validator=aware)
    grace: timedelta
    blobs: int  # every blob in the repository
    referenced: int
    delete: tuple[BlobInfo, ...]  # unreferenced and older than the grace period
    too_recent: tuple[BlobInfo, ...]  # unreferenced, but maybe a backup in progress wrote them

    @property
    def reclaimable_bytes(self) -> int:
        return sum(b.size_bytes for b in self.delete)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "now": self.now.isoformat(),
            "grace": format_duration(self.grace),
            "blobs": self.blobs,
            "referenced": self.referenced,
            "unreferenced": len(self.delete) + len(self.too_recent),
            "to_delete": len(self.delete),
            "reclaimable_bytes": self.reclaimable_bytes,
            "too_recent": len(self.too_recent),
            "too_recent_bytes": sum(b.size_bytes for b in self.too_recent),
        }

    def __repr__(self) -> str:
        return (
            f"<GcPlan {self.id}: delete {len(self.delete)} of {self.blobs} blobs "
            f"({human_bytes(self.reclaimable_bytes)}), {len(self.too_recent)} too recent>"
        )

    def _repr_html_(self) -> str:
        return kv_table(self.summary().items(), caption="garbage collection plan")


def plan_gc(
    blobs: Iterable[BlobInfo], referenced: Set[str], *, now: datetime, grace: timedelta
) -> GcPlan:
    """Classify every blob: referenced (kept), unreferenced and older than ``grace`` (delete),
    unreferenced but younger, or of unknown age (kept: a backup may be writing them)."""
    total = kept = 0
    delete: list[BlobInfo] = []
    recent: list[BlobInfo] = []
    cutoff = now - grace
    digest = hashlib.sha256(f"{now.isoformat()}|{grace}".encode())
    for blob in blobs:
        total += 1
        if blob.blob_id in referenced:
            kept += 1
        elif blob.modified_at is not None and blob.modified_at <= cutoff:
            delete.append(blob)
            digest.update(blob.blob_id.encode())
        else:
            recent.append(blob)
    return GcPlan(
        id=digest.hexdigest()[:12],
        now=now,
        grace=grace,
        blobs=total,
        referenced=kept,
        delete=tuple(sorted(delete, key=lambda b: b.blob_id)),
        too_recent=tuple(sorted(recent, key=lambda b: b.blob_id)),
    )


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
