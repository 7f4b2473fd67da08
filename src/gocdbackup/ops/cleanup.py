"""clean_orphans, undo_cleanup, purge_quarantine: act on a cleanup plan without ever losing an
object a racing writer still needs.

Every key is re-checked first (still there, same size and write time as the scan saw, still
older than the grace window, no row references it now).  Quarantine copies the object under
``.gocdbackup-quarantine/<cleanup id>/objects/<key>`` (in the store itself, or another store)
and only then deletes the original; the intent (``cleanup.json``) is written before anything
moves, so an interrupted cleanup can always be undone."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from gocdbackup.context import OpContext
from gocdbackup.errors import (
    ConfigError,
    ConfirmationMismatch,
    ObjectMissing,
    ReportMismatch,
)
from gocdbackup.model.cleanup import (
    CHANGED_DURING_CLEANUP,
    CHANGED_SINCE_SCAN,
    NEWER_THAN_GRACE,
    CleanupPlan,
    CleanupResult,
)
from gocdbackup.model.durations import format_duration
from gocdbackup.model.keys import check_object_key
from gocdbackup.model.orphans import OrphanRow
from gocdbackup.ops._objects import hashing, object_blocks
from gocdbackup.ops.orphans import QUARANTINE_PREFIX
from gocdbackup.ports import GocdnextData, ObjectInfo, ObjectStore

log = logging.getLogger("gocdbackup.ops.cleanup")

#: a plan made from an older report is refused: the world has moved on, scan again
MAX_REPORT_AGE = timedelta(hours=24)
MODES = ("quarantine", "delete")
CLEANUP_KIND = "gocdbackup.cleanup"


def record_key(cleanup_id: str, name: str) -> str:
    return f"{QUARANTINE_PREFIX}{cleanup_id}/{name}"


def copy_key(cleanup_id: str, key: str) -> str:
    return f"{QUARANTINE_PREFIX}{cleanup_id}/objects/{key}"


def check_plan(
    plan: CleanupPlan,
    store: ObjectStore,
    db: GocdnextData,
    *,
    ctx: OpContext,
    confirm: str,
    max_report_age: timedelta = MAX_REPORT_AGE,
) -> None:
    """Refuse a plan that was not confirmed, was made for another store or database, or
    comes from a report older than ``max_report_age``."""
    if confirm != plan.id:
        raise ConfirmationMismatch(f"confirm must repeat the plan id {plan.id}")
    if plan.source.store != store.url:
        raise ReportMismatch(
            f"report {plan.report_id} was made for {plan.source.store}, not {store.url}"
        )
    here = db.source_id()
    if plan.source.database != here:
        raise ReportMismatch(
            f"report {plan.report_id} was made for {plan.source.database}, not {here}"
        )
    age = ctx.now() - plan.scanned_at
    if age > max_report_age:
        raise ReportMismatch(
            f"report {plan.report_id} is {format_duration(age)} old (the limit is "
            f"{format_duration(max_report_age)}): scan again"
        )


def _why_not(item: OrphanRow, now_info: ObjectInfo | None, cutoff: datetime) -> str:
    if now_info is None:
        return "gone since the scan"
    if now_info.size_bytes != item.size_bytes or now_info.modified_at != item.modified_at:
        return CHANGED_SINCE_SCAN
    if now_info.modified_at is None or now_info.modified_at > cutoff:
        return NEWER_THAN_GRACE
    return ""


def safe_key(key: str) -> bool:
    try:
        check_object_key(key)
    except ConfigError:
        return False
    return not key.startswith(QUARANTINE_PREFIX)


def _referenced(db: GocdnextData, keys: list[str]) -> set[str]:
    return set(db.object_rows_now(keys)) if keys else set()


def clean_orphans(
    plan: CleanupPlan,
    store: ObjectStore,
    db: GocdnextData,
    *,
    ctx: OpContext,
    confirm: str,
    mode: str = "quarantine",
    quarantine: ObjectStore | None = None,
    dry_run: bool = False,
    max_report_age: timedelta = MAX_REPORT_AGE,
    workers: int = 8,
) -> CleanupResult:
    """Quarantine (default) or delete the objects of ``plan`` that are still orphans.

    ``confirm`` must repeat ``plan.id``.  With ``dry_run`` every key is re-checked and the
    result says what would happen; nothing is written."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if plan.side != "object":
        raise ConfigError("this plan is for rows without objects: use retire_missing")
    check_plan(plan, store, db, ctx=ctx, confirm=confirm, max_report_age=max_report_age)
    qstore = quarantine or store
    now = ctx.now()
    cleanup_id = f"clean-{now:%Y%m%dT%H%M%SZ}-{os.urandom(3).hex()}"
    cutoff = now - plan.grace
    eligible, skipped = _recheck(plan.items, store, db, cutoff, ctx)
    if dry_run:
        return _result(cleanup_id, plan, "dry-run", eligible, skipped)
    record = {
        "kind": CLEANUP_KIND,
        "id": cleanup_id,
        "plan_id": plan.id,
        "report_id": plan.report_id,
        "mode": mode,
        "created_at": now.isoformat(),
        "store": store.url,
        "items": [{"key": i.key, "class": i.cls.value, "size": i.size_bytes} for i in eligible],
    }
    # the intent first: if the quarantine is not writable, nothing has moved
    qstore.write(record_key(cleanup_id, "cleanup.json"), json.dumps(record).encode())
    done: list[OrphanRow] = []
    shas: dict[str, str] = {}
    lock = threading.Lock()

    stop = threading.Event()

    def act(item: OrphanRow) -> None:
        if stop.is_set():
            return  # another worker failed: move nothing more
        ctx.check()
        try:
            _act(item)
        except BaseException:
            stop.set()
            raise

    def _act(item: OrphanRow) -> None:
        reason, sha = _move_one(
            item, mode, store=store, qstore=qstore, db=db, cleanup_id=cleanup_id
        )
        with lock:
            if reason:
                skipped[item.key] = reason
            else:
                done.append(item)
                shas[item.key] = sha
            ctx.report("orphans-clean", len(done) + len(skipped), len(plan.items), unit="keys")

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gocdbackup-clean") as pool:
        list(pool.map(act, eligible))
    result = _result(cleanup_id, plan, mode, done, skipped)
    qstore.write(
        record_key(cleanup_id, "result.json"),
        json.dumps({**result.summary(), "sha256": shas, "skipped_keys": skipped}).encode(),
    )
    log.info("cleanup %s (%s): %s", cleanup_id, mode, result.summary())
    return result


def _move_one(
    item: OrphanRow,
    mode: str,
    *,
    store: ObjectStore,
    qstore: ObjectStore,
    db: GocdnextData,
    cleanup_id: str,
) -> tuple[str, str]:
    """Quarantine or delete one object: (why it was left alone, or "", its SHA-256 or "")."""
    if mode == "delete":
        if _referenced(db, [item.key]):
            return "referenced by a row now", ""
        store.delete(item.key)
        return "", ""
    sha = _quarantine_one(store, qstore, cleanup_id, item)
    if sha is None:
        return CHANGED_DURING_CLEANUP, ""
    if _referenced(db, [item.key]):  # a row appeared while it was copied: keep the original
        qstore.delete(copy_key(cleanup_id, item.key))
        return "referenced by a row now", ""
    store.delete(item.key)
    return "", sha


def _recheck(
    items: Iterable[OrphanRow],
    store: ObjectStore,
    db: GocdnextData,
    cutoff: datetime,
    ctx: OpContext,
) -> tuple[list[OrphanRow], dict[str, str]]:
    items = list(items)
    referenced = set()
    for start in range(0, len(items), 500):
        referenced |= _referenced(
            db, [i.key for i in items[start : start + 500] if safe_key(i.key)]
        )
    eligible: list[OrphanRow] = []
    skipped: dict[str, str] = {}
    for n, item in enumerate(items, 1):
        ctx.check()
        if not safe_key(item.key):
            reason = "unsafe key (absolute, empty or with '..'): never touched"
        elif item.key in referenced:
            reason = "referenced by a row now"
        else:
            reason = _why_not(item, store.stat(item.key), cutoff)
        if reason:
            skipped[item.key] = reason
        else:
            eligible.append(item)
        ctx.report("orphans-recheck", n, len(items), unit="keys")
    return eligible, skipped


def _result(
    cleanup_id: str,
    plan: CleanupPlan,
    mode: str,
    done: list[OrphanRow],
    skipped: dict[str, str],
) -> CleanupResult:
    counts = Counter(i.cls.value for i in done)
    return CleanupResult(
        id=cleanup_id,
        plan_id=plan.id,
        mode=mode,
        done={c.value: counts.get(c.value, 0) for c in plan.classes},
        bytes=sum(i.size_bytes for i in done),
        skipped=dict(skipped),
    )


def _quarantine_one(
    store: ObjectStore, qstore: ObjectStore, cleanup_id: str, item: OrphanRow
) -> str | None:
    """Copy ``item`` into the quarantine; its SHA-256, or None (copy dropped) if the object
    changed or vanished while it was copied."""
    digest = hashlib.sha256()
    try:
        qstore.write_stream(
            copy_key(cleanup_id, item.key),
            hashing(object_blocks(store, item.key, item.size_bytes), digest),
        )
    except ObjectMissing:
        return None
    after = store.stat(item.key)
    if after is None or (after.size_bytes, after.modified_at) != (
        item.size_bytes,
        item.modified_at,
    ):
        qstore.delete(copy_key(cleanup_id, item.key))
        return None
    return digest.hexdigest()
