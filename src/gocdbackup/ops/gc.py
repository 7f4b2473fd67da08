"""Garbage collection: delete the blobs no backup references, after a grace period."""

from __future__ import annotations

import logging
from datetime import timedelta

from gocdbackup.context import OpContext
from gocdbackup.errors import GocdBackupError, PreconditionFailed
from gocdbackup.model.gc import GcResult, plan_gc
from gocdbackup.ops.artifact_index import artifact_chunks
from gocdbackup.ops.shards import pending_blobs
from gocdbackup.ops.wal import wal_blobs
from gocdbackup.repository import Repository

log = logging.getLogger("gocdbackup.ops.gc")

DEFAULT_GRACE = timedelta(hours=24)
#: blobs deleted per request (S3's DeleteObjects takes 1,000 keys)
DELETE_BATCH = 1000


def referenced_blobs(repo: Repository, ctx: OpContext) -> set[str]:
    """Every blob id any manifest names, directly or through its artefact index, and every blob
    of the WAL archive. An unreadable manifest, index or WAL entry stops the collection: what
    it references cannot be known, so nothing may be deleted."""
    try:
        out = wal_blobs(repo)
    except GocdBackupError as exc:
        raise PreconditionFailed(
            f"the WAL archive is unreadable ({exc}); garbage collection refuses to run until "
            "'gocdbackup wal verify' is clean"
        ) from exc
    for backup_id in repo.backup_ids():
        try:
            backup = repo.read_manifest(backup_id).backup
            for component in backup.components:
                out.update(c.blob_id for c in component.chunks)
            out.update(c.blob_id for c in artifact_chunks(repo, backup, ctx))
        except GocdBackupError as exc:
            raise PreconditionFailed(
                f"backup {backup_id} is unreadable ({exc}); garbage collection refuses to "
                "run until 'gocdbackup verify' is clean"
            ) from exc
    out.update(pending_blobs(repo, ctx))  # detached backups waiting for their shards
    return out


def collect_garbage(
    repo: Repository, *, ctx: OpContext, grace: timedelta = DEFAULT_GRACE, dry_run: bool = True
) -> GcResult:
    """Under an exclusive lock: list the blobs once, read every manifest, and delete (unless
    ``dry_run``) the blobs none references that are older than ``grace``.  The grace period
    protects blobs of a backup still writing under an expired-then-renewed lease, or a clock
    that runs behind; the lock keeps backups out while the collection runs."""
    if grace < timedelta(0):
        raise PreconditionFailed("the grace period cannot be negative")
    with repo.lock("exclusive", "gc", ctx.clock) as lock:
        # the manifests first, then one streamed pass over the blobs (no writer can add any:
        # the exclusive lock keeps backups out)
        referenced = referenced_blobs(repo, ctx)
        plan = plan_gc(repo.blobs(), referenced, now=ctx.now(), grace=grace)
        if dry_run:
            return GcResult(plan=plan, dry_run=True, deleted=0, deleted_bytes=0)
        deleted = deleted_bytes = 0
        for start in range(0, len(plan.delete), DELETE_BATCH):
            ctx.check()
            lock.check()
            batch = plan.delete[start : start + DELETE_BATCH]
            repo.delete_blobs([blob.blob_id for blob in batch])  # S3: one request
            deleted += len(batch)
            deleted_bytes += sum(blob.size_bytes for blob in batch)
            ctx.report("gc", deleted, len(plan.delete), unit="blobs")
    log.info("garbage collection deleted %d blobs (%d bytes)", deleted, deleted_bytes)
    return GcResult(plan=plan, dry_run=False, deleted=deleted, deleted_bytes=deleted_bytes)
