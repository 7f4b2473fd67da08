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
from typing import Any

from gocdbackup.context import OpContext
from gocdbackup.errors import (
    ConfigError,
    ConfirmationMismatch,
    GocdBackupError,
    NotFound,
    ObjectMissing,
    ReportMismatch,
    UnsupportedFormat,
)
from gocdbackup.model.cleanup import CleanupPlan, CleanupResult, UndoResult
from gocdbackup.model.durations import format_duration
from gocdbackup.model.keys import check_object_key
from gocdbackup.model.orphans import OrphanRow
from gocdbackup.ops._objects import hashing, object_blocks, object_sha256
from gocdbackup.ops.orphans import QUARANTINE_PREFIX
from gocdbackup.ports import Database, ObjectInfo, ObjectStore

log = logging.getLogger("gocdbackup.ops.cleanup")

#: a plan made from an older report is refused: the world has moved on, scan again
MAX_REPORT_AGE = timedelta(hours=24)
MODES = ("quarantine", "delete")
_KIND = "gocdbackup.cleanup"


def _record_key(cleanup_id: str, name: str) -> str:
    return f"{QUARANTINE_PREFIX}{cleanup_id}/{name}"


def _copy_key(cleanup_id: str, key: str) -> str:
    return f"{QUARANTINE_PREFIX}{cleanup_id}/objects/{key}"


def check_plan(
    plan: CleanupPlan,
    store: ObjectStore,
    db: Database,
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
        return "changed since the scan"
    if now_info.modified_at is None or now_info.modified_at > cutoff:
        return "newer than the grace window"
    return ""


def _safe(key: str) -> bool:
    try:
        check_object_key(key)
    except ConfigError:
        return False
    return not key.startswith(QUARANTINE_PREFIX)


def _referenced(db: Database, keys: list[str]) -> set[str]:
    return set(db.object_rows_now(keys)) if keys else set()


def clean_orphans(
    plan: CleanupPlan,
    store: ObjectStore,
    db: Database,
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
        "kind": _KIND,
        "id": cleanup_id,
        "plan_id": plan.id,
        "report_id": plan.report_id,
        "mode": mode,
        "created_at": now.isoformat(),
        "store": store.url,
        "items": [{"key": i.key, "class": i.cls.value, "size": i.size_bytes} for i in eligible],
    }
    # the intent first: if the quarantine is not writable, nothing has moved
    qstore.write(_record_key(cleanup_id, "cleanup.json"), json.dumps(record).encode())
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
        _record_key(cleanup_id, "result.json"),
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
    db: Database,
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
        return "changed during the cleanup", ""
    if _referenced(db, [item.key]):  # a row appeared while it was copied: keep the original
        qstore.delete(_copy_key(cleanup_id, item.key))
        return "referenced by a row now", ""
    store.delete(item.key)
    return "", sha


def _recheck(
    items: Iterable[OrphanRow],
    store: ObjectStore,
    db: Database,
    cutoff: datetime,
    ctx: OpContext,
) -> tuple[list[OrphanRow], dict[str, str]]:
    items = list(items)
    referenced = set()
    for start in range(0, len(items), 500):
        referenced |= _referenced(db, [i.key for i in items[start : start + 500] if _safe(i.key)])
    eligible: list[OrphanRow] = []
    skipped: dict[str, str] = {}
    for n, item in enumerate(items, 1):
        ctx.check()
        if not _safe(item.key):
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
            _copy_key(cleanup_id, item.key),
            hashing(object_blocks(store, item.key, item.size_bytes), digest),
        )
    except ObjectMissing:
        return None
    after = store.stat(item.key)
    if after is None or (after.size_bytes, after.modified_at) != (
        item.size_bytes,
        item.modified_at,
    ):
        qstore.delete(_copy_key(cleanup_id, item.key))
        return None
    return digest.hexdigest()


def _read_record(qstore: ObjectStore, cleanup_id: str, name: str) -> dict[str, Any]:
    try:
        raw = qstore.read(_record_key(cleanup_id, name))
    except ObjectMissing:
        raise NotFound(f"no cleanup {cleanup_id} in {qstore.url}") from None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise UnsupportedFormat(f"the record of cleanup {cleanup_id} is unreadable") from None
    if not isinstance(doc, dict) or (name == "cleanup.json" and doc.get("kind") != _KIND):
        raise UnsupportedFormat(f"the record of cleanup {cleanup_id} is unreadable")
    return doc


def undo_cleanup(
    cleanup_id: str,
    store: ObjectStore,
    *,
    ctx: OpContext,
    quarantine: ObjectStore | None = None,
) -> UndoResult:
    """Put every quarantined object of ``cleanup_id`` back under its key, byte for byte.

    Works after an interrupted cleanup too.  A key that was written again since the cleanup
    is left alone (a conflict; the quarantined copy is kept).  Once everything is back, the
    cleanup's records are removed."""
    qstore = quarantine or store
    record = _read_record(qstore, cleanup_id, "cleanup.json")
    if record.get("store") != store.url:
        raise ReportMismatch(f"cleanup {cleanup_id} was made in {record.get('store')}")
    try:
        shas: dict[str, str] = _read_record(qstore, cleanup_id, "result.json").get("sha256", {})
    except NotFound:
        shas = {}  # interrupted before the end: the copies are complete (atomic writes)
    restored = already = 0
    conflicts: list[str] = []
    lost: list[str] = []
    items = record.get("items", [])
    for n, item in enumerate(items, 1):
        ctx.check()
        key = str(item["key"])
        if not _safe(key):
            lost.append(key)  # a tampered record: never written anywhere
            continue
        copy = _copy_key(cleanup_id, key)
        if qstore.stat(copy) is None:
            if store.stat(key) is not None and record.get("mode") == "quarantine":
                already += 1  # interrupted before this key was moved: it never left
            else:
                lost.append(key)
            continue
        if store.stat(key) is not None:
            if object_sha256(store, key) == object_sha256(qstore, copy):
                qstore.delete(copy)
                already += 1
            else:
                conflicts.append(key)
            continue
        digest = hashlib.sha256()
        store.write_stream(key, hashing(object_blocks(qstore, copy), digest))
        if key in shas and shas[key] and digest.hexdigest() != shas[key]:
            raise GocdBackupError(f"the quarantined copy of {key!r} does not match its SHA-256")
        qstore.delete(copy)
        restored += 1
        ctx.report("orphans-undo", n, len(items), unit="keys")
    if not conflicts and not lost:
        qstore.delete(_record_key(cleanup_id, "result.json"))
        qstore.delete(_record_key(cleanup_id, "cleanup.json"))
    result = UndoResult(
        cleanup_id=cleanup_id,
        restored=restored,
        already_there=already,
        conflicts=tuple(conflicts),
        lost=tuple(lost),
    )
    log.info("undo of %s: %s", cleanup_id, result.summary())
    return result


def list_cleanups(qstore: ObjectStore) -> list[dict[str, Any]]:
    """Every cleanup with records in the quarantine: id, mode, created_at, objects, bytes."""
    out = []
    sizes: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    records = []
    for info in qstore.list(QUARANTINE_PREFIX):
        cleanup_id, _, rest = info.key[len(QUARANTINE_PREFIX) :].partition("/")
        if rest == "cleanup.json":
            records.append(cleanup_id)
        elif rest.startswith("objects/"):
            sizes[cleanup_id] += info.size_bytes
            counts[cleanup_id] += 1
    for cleanup_id in sorted(records):
        doc = _read_record(qstore, cleanup_id, "cleanup.json")
        out.append(
            {
                "id": cleanup_id,
                "mode": doc.get("mode"),
                "created_at": doc.get("created_at"),
                "quarantined_objects": counts[cleanup_id],
                "quarantined_bytes": sizes[cleanup_id],
            }
        )
    return out


def purge_quarantine(
    store: ObjectStore,
    *,
    ctx: OpContext,
    older_than: timedelta,
    confirm: str | None = None,
) -> dict[str, Any]:
    """Delete for good the quarantined objects of cleanups older than ``older_than``.

    Without ``confirm`` this is a dry run; its ``id`` (which names exactly those cleanups) is
    what ``confirm`` must repeat."""
    cutoff = ctx.now() - older_than
    due = [c for c in list_cleanups(store) if datetime.fromisoformat(str(c["created_at"])) < cutoff]
    purge_id = (
        "purge-" + hashlib.sha256(json.dumps([c["id"] for c in due]).encode()).hexdigest()[:12]
    )
    summary = {
        "id": purge_id,
        "cleanups": [c["id"] for c in due],
        "objects": sum(int(c["quarantined_objects"]) for c in due),
        "bytes": sum(int(c["quarantined_bytes"]) for c in due),
        "applied": False,
    }
    if confirm is None:
        return summary
    if confirm != purge_id:
        raise ConfirmationMismatch(f"confirm must repeat the purge id {purge_id}")
    for c in due:
        prefix = f"{QUARANTINE_PREFIX}{c['id']}/"
        keys = [i.key for i in store.list(prefix)]
        for key in sorted(keys, key=lambda k: k.endswith("/cleanup.json")):  # record last
            ctx.check()
            store.delete(key)
    summary["applied"] = True
    log.info("purged %s", summary)
    return summary
