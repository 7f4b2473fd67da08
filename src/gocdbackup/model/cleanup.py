"""Cleanup plans and their outcomes: what an orphan cleanup will do to which key (pure values,
made from an :class:`~gocdbackup.model.orphan_report.OrphanReport`)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from attrs import frozen

from gocdbackup.errors import ConfigError
from gocdbackup.model.orphan_report import OrphanReport, ScanSource
from gocdbackup.model.orphans import OrphanClass, OrphanRow
from gocdbackup.model.render import html_table, human_bytes, kv_table

#: what a cleanup acts on unless told otherwise: objects in gocdnext's layouts no row
#: references, and interrupted filesystem uploads (never foreign objects, never too recent)
DEFAULT_OBJECT_CLASSES = (OrphanClass.ORPHAN_OBJECT, OrphanClass.PARTIAL_UPLOAD)
#: what the row side acts on unless told otherwise
DEFAULT_ROW_CLASSES = (OrphanClass.MISSING_OBJECT,)
#: classes no plan ever acts on
NEVER = frozenset({OrphanClass.OK, OrphanClass.TOO_RECENT})

#: why a cleanup leaves a key alone (:attr:`CleanupResult.skipped`) when only a new scan can
#: judge it again: the object changed (or grew young again) after the scan, or while it was
#: being moved
CHANGED_SINCE_SCAN = "changed since the scan"
NEWER_THAN_GRACE = "newer than the grace window"
CHANGED_DURING_CLEANUP = "changed during the cleanup"
RESCAN_REASONS = frozenset({CHANGED_SINCE_SCAN, NEWER_THAN_GRACE, CHANGED_DURING_CLEANUP})


@frozen(kw_only=True)
class CleanupPlan:
    """Exactly which keys a cleanup (object side) or a retire/recover (row side) may touch,
    and what the scan saw of each: the cleanup re-checks every key against it first."""

    id: str
    report_id: str
    source: ScanSource
    scanned_at: datetime
    grace: timedelta
    classes: tuple[OrphanClass, ...]
    items: tuple[OrphanRow, ...]
    #: objects the store held when it was scanned (None: not known)
    store_objects: int | None = None

    @property
    def store_empty(self) -> bool:
        return self.store_objects == 0

    @property
    def side(self) -> str:
        return "row" if all(c.side == "row" for c in self.classes) else "object"

    @property
    def bytes(self) -> int:
        return sum(i.size_bytes for i in self.items)

    def counts(self) -> dict[str, int]:
        c = Counter(i.cls.value for i in self.items)
        return {**{cls.value: 0 for cls in self.classes}, **c}

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "report_id": self.report_id,
            "store": self.source.store,
            "database": self.source.database,
            "classes": [c.value for c in self.classes],
            "counts": self.counts(),
            "bytes": self.bytes,
        }

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"key": i.key, "class": i.cls.value, "size_bytes": i.size_bytes} for i in self.items
        ]

    def _repr_html_(self) -> str:
        return html_table(self.rows(), caption=f"Cleanup plan {self.id}: {len(self.items)} keys")


def _classes(
    classes: Iterable[OrphanClass | str] | None, default: tuple[OrphanClass, ...]
) -> tuple[OrphanClass, ...]:
    if classes is None:
        return default
    try:
        chosen = tuple(dict.fromkeys(OrphanClass(c) for c in classes))
    except ValueError as exc:
        raise ConfigError(f"unknown orphan class: {exc}") from None
    if not chosen:
        raise ConfigError("no orphan class chosen")
    barred = [c.value for c in chosen if c in NEVER]
    if barred:
        raise ConfigError(f"a cleanup never acts on {', '.join(barred)}")
    sides = {c.side for c in chosen}
    if len(sides) > 1:
        raise ConfigError(
            "a plan is either for objects without rows or for rows without objects, not both"
        )
    return chosen


def plan_cleanup(
    report: OrphanReport,
    classes: Iterable[OrphanClass | str] | None = None,
    *,
    rows: bool = False,
) -> CleanupPlan:
    """What a cleanup would do: every key of ``report`` in ``classes`` (default: orphan objects
    and partial uploads; with ``rows=True``, rows whose object is missing).  Pure: nothing is
    touched.  An incomplete report cannot be planned from."""
    if not report.complete:
        raise ConfigError(
            f"report {report.id} is incomplete (interrupted at {report.cursor!r}): resume the "
            "scan before planning a cleanup"
        )
    chosen = _classes(classes, DEFAULT_ROW_CLASSES if rows else DEFAULT_OBJECT_CLASSES)
    return _plan(report, chosen, tuple(report.rows(*chosen)), "plan")


def plan_recovery(report: OrphanReport) -> CleanupPlan:
    """Every ``ready`` row whose object is missing, whatever its age: writing an object back
    from a backup that holds it under the row's own SHA-256 and size destroys nothing, so
    the grace window (which guards what is in flight) does not hold it back.  Pure."""
    if not report.complete:
        raise ConfigError(
            f"report {report.id} is incomplete (interrupted at {report.cursor!r}): resume the "
            "scan before planning a recovery"
        )
    items = tuple(
        i for i in report.rows(OrphanClass.MISSING_OBJECT, OrphanClass.TOO_RECENT) if i.recoverable
    )
    return _plan(report, DEFAULT_ROW_CLASSES, items, "recover")


def _plan(
    report: OrphanReport, chosen: tuple[OrphanClass, ...], items: tuple[OrphanRow, ...], kind: str
) -> CleanupPlan:
    digest = hashlib.sha256(
        json.dumps(
            [report.id, [c.value for c in chosen], [[i.key, i.cls.value] for i in items]]
        ).encode()
    ).hexdigest()[:12]
    return CleanupPlan(
        id=f"{kind}-{digest}",
        report_id=report.id,
        source=report.source,
        scanned_at=report.scanned_at,
        grace=report.grace,
        classes=chosen,
        items=items,
        store_objects=report.store_objects,
    )


@frozen(kw_only=True)
class CleanupResult:
    """What :func:`~gocdbackup.ops.orphans.clean_orphans` did (``undo_cleanup`` takes the id)."""

    id: str
    plan_id: str
    mode: str  # quarantine, delete, or dry-run
    done: Mapping[str, int]  # class -> keys acted on
    bytes: int
    #: key -> why it was left alone (changed since the scan, referenced now, gone, ...)
    skipped: Mapping[str, str]

    def summary(self) -> dict[str, Any]:
        reasons = Counter(self.skipped.values())
        return {
            "id": self.id,
            "plan_id": self.plan_id,
            "mode": self.mode,
            "done": dict(self.done),
            "bytes": self.bytes,
            "skipped": len(self.skipped),
            "skipped_reasons": dict(reasons),
        }

    @property
    def acted_on(self) -> int:
        """Objects quarantined or deleted (a dry run: that would be)."""
        return sum(self.done.values())

    @property
    def rescan_keys(self) -> tuple[str, ...]:
        """The keys left alone that only a new scan can judge (they changed, or grew young
        again, since the scan): a cleanup from the next report acts on them."""
        return tuple(key for key, why in self.skipped.items() if why in RESCAN_REASONS)

    def describe(self) -> str:
        """One sentence for people."""
        verb = {"quarantine": "quarantined", "delete": "deleted"}.get(self.mode, "would move")
        done = sum(self.done.values())
        text = f"{verb} {done:,} object(s) ({human_bytes(self.bytes)})"
        if self.skipped:
            reasons = Counter(self.skipped.values())
            text += "; left alone: " + ", ".join(f"{n:,} {why}" for why, n in reasons.items())
        return text

    def _repr_html_(self) -> str:
        return kv_table(self.summary().items(), caption=f"Cleanup {self.id}")


def cleanable_objects(report: OrphanReport) -> int:
    """How many objects of ``report`` a cleanup acts on by default (the classes of
    :data:`DEFAULT_OBJECT_CLASSES`: objects without rows and interrupted uploads)."""
    return sum(report.counts.get(c.value, 0) for c in DEFAULT_OBJECT_CLASSES)


@frozen(kw_only=True)
class LeftAfterCleanup:
    """What a cleanup of ``report`` could not judge: only a new scan (after the grace window),
    and a cleanup from the new report, finish them.  Nothing left: :attr:`complete`."""

    #: keys the cleanup left alone because they changed, or grew young again, since the scan
    changed: int
    #: objects in gocdnext's layouts without rows that were too recent to be judged at the
    #: scan (the grace window); a later scan decides whether they are orphans
    unjudged: int
    #: the report's grace window
    grace: timedelta

    @property
    def complete(self) -> bool:
        return not (self.changed or self.unjudged)

    def summary(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "unjudged": self.unjudged,
            "grace_seconds": self.grace.total_seconds(),
            "complete": self.complete,
        }


def left_after_cleanup(report: OrphanReport, result: CleanupResult) -> LeftAfterCleanup:
    """What the cleanup ``result`` (of a plan made from ``report``) leaves for a new scan: the
    keys it skipped for a reason only a new scan can judge (:data:`RESCAN_REASONS`), and the
    objects without rows ``report`` found too recent to judge.  Pure."""
    return LeftAfterCleanup(
        changed=len(result.rescan_keys),
        unjudged=sum(1 for row in report.rows(OrphanClass.TOO_RECENT) if row.unjudged_object),
        grace=report.grace,
    )


@frozen(kw_only=True)
class UndoResult:
    cleanup_id: str
    restored: int
    already_there: int  # the original key already held the same bytes
    conflicts: tuple[str, ...]  # keys rewritten since the cleanup: left alone, copy kept
    lost: tuple[str, ...]  # keys whose quarantined copy is gone (a delete-mode cleanup, a purge)

    @property
    def complete(self) -> bool:
        """Every quarantined object is back (no conflict, none lost)."""
        return not (self.conflicts or self.lost)

    def summary(self) -> dict[str, Any]:
        return {
            "cleanup_id": self.cleanup_id,
            "restored": self.restored,
            "already_there": self.already_there,
            "conflicts": list(self.conflicts),
            "lost": list(self.lost),
        }

    def _repr_html_(self) -> str:
        return kv_table(self.summary().items(), caption=f"Undo of {self.cleanup_id}")


@frozen(kw_only=True)
class RecoverResult:
    """What :func:`~gocdbackup.ops.orphans.recover_missing` wrote back from backups."""

    recovered: Mapping[str, str]  # key -> backup id it came from
    unrecoverable: Mapping[str, str]  # key -> why
    bytes: int

    def summary(self) -> dict[str, Any]:
        return {
            "recovered": len(self.recovered),
            "unrecoverable": len(self.unrecoverable),
            "bytes": self.bytes,
            "from_backups": dict(Counter(self.recovered.values())),
        }

    def describe(self) -> str:
        """One sentence for people."""
        backups = len(set(self.recovered.values()))
        text = (
            f"recovered {len(self.recovered):,} object(s) ({human_bytes(self.bytes)}) from "
            f"{backups} backup(s)"
        )
        if self.unrecoverable:
            text += f"; {len(self.unrecoverable):,} no backup holds"
        return text

    def _repr_html_(self) -> str:
        return kv_table(self.summary().items(), caption="Recovered from backups")
