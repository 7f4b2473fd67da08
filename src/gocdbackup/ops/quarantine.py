"""The quarantine a cleanup moved objects into: undo a cleanup byte for byte, list the kept
cleanups, purge old ones for good (after a confirmation of its own)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from gocdbackup.context import OpContext
from gocdbackup.errors import (
    ConfirmationMismatch,
    GocdBackupError,
    NotFound,
    ObjectMissing,
    ReportMismatch,
    UnsupportedFormat,
)
from gocdbackup.model.cleanup import UndoResult
from gocdbackup.ops._objects import hashing, object_blocks, object_sha256
from gocdbackup.ops.cleanup import CLEANUP_KIND, copy_key, record_key, safe_key
from gocdbackup.ops.orphans import QUARANTINE_PREFIX
from gocdbackup.ports import ObjectStore

log = logging.getLogger("gocdbackup.ops.quarantine")


def _read_record(qstore: ObjectStore, cleanup_id: str, name: str) -> dict[str, Any]:
    try:
        raw = qstore.read(record_key(cleanup_id, name))
    except ObjectMissing:
        raise NotFound(f"no cleanup {cleanup_id} in {qstore.url}") from None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise UnsupportedFormat(f"the record of cleanup {cleanup_id} is unreadable") from None
    if not isinstance(doc, dict) or (name == "cleanup.json" and doc.get("kind") != CLEANUP_KIND):
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
        if not safe_key(key):
            lost.append(key)  # a tampered record: never written anywhere
            continue
        copy = copy_key(cleanup_id, key)
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
        qstore.delete(record_key(cleanup_id, "result.json"))
        qstore.delete(record_key(cleanup_id, "cleanup.json"))
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
        record = [k for k in keys if k.endswith("/cleanup.json")]
        ctx.check()
        store.delete_many([k for k in keys if not k.endswith("/cleanup.json")])
        store.delete_many(record)  # the record last: an interrupted purge can be run again
    summary["applied"] = True
    log.info("purged %s", summary)
    return summary
