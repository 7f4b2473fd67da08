"""Garbage collection: delete the blobs no backup references, after a grace period."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

from gocdbackup.context import OpContext
from gocdbackup.errors import GocdBackupError, PreconditionFailed
from gocdbackup.model.gc import BlobInfo, GcResult, GcTally, Verdict, judge_blobs
from gocdbackup.ops.artifact_index import artifact_chunks
from gocdbackup.ops.shards import pending_blobs
from gocdbackup.ops.wal import wal_blobs
from gocdbackup.repository import Repository
from gocdbackup.repository.sorting import sorted_records

log = logging.getLogger("gocdbackup.ops.gc")

DEFAULT_GRACE = timedelta(hours=24)
#: blobs deleted per request (S3's DeleteObjects takes 1,000 keys)
DELETE_BATCH = 1000


#: referenced blob ids sorted in memory at once before a run is spilled to disk (about 12 MB)
SORT_RUN = 100_000


def referenced_blobs(
    repo: Repository, ctx: OpContext, *, sort_run: int = SORT_RUN
) -> Iterator[str]:
    """Every blob id any manifest names, directly or through its artefact index, and every blob
    of the WAL archive, in id order (repeats possible), sorted in bounded memory.  An
    unreadable manifest, index or WAL entry stops the collection: what it references cannot
    be known, so nothing may be deleted."""
    return sorted_records(_referenced(repo, ctx), run_size=sort_run)


def _referenced(repo: Repository, ctx: OpContext) -> Iterator[str]:
    try:
        yield from wal_blobs(repo)
    except GocdBackupError as exc:
        raise PreconditionFailed(
            f"the WAL archive is unreadable ({exc}); garbage collection refuses to run until "
            "'gocdbackup wal verify' is clean"
        ) from exc
    for backup_id in repo.backup_ids():
        try:
            backup = repo.read_manifest(backup_id).backup
            for component in backup.components:
                yield from (c.blob_id for c in component.chunks)
            yield from (c.blob_id for c in artifact_chunks(repo, backup, ctx))
        except GocdBackupError as exc:
            raise PreconditionFailed(
                f"backup {backup_id} is unreadable ({exc}); garbage collection refuses to "
                "run until 'gocdbackup verify' is clean"
            ) from exc
    yield from pending_blobs(repo, ctx)  # detached backups waiting for their shards


def collect_garbage(
    repo: Repository,
    *,
    ctx: OpContext,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = True,
    sort_run: int = SORT_RUN,
) -> GcResult:
    """Under an exclusive lock: read every manifest, then list the blobs once and delete
    (unless ``dry_run``) the blobs none references that are older than ``grace``, in batches
    as the listing streams by.  Memory stays flat: the referenced ids are sorted on disk in
    runs of ``sort_run``, and the blobs are judged in one merge with them.  The grace
    period protects blobs of a backup still writing under an expired-then-renewed lease, or a
    clock that runs behind; the lock keeps backups out while the collection runs."""
    if grace < timedelta(0):
        raise PreconditionFailed("the grace period cannot be negative")
    tally = GcTally(ctx.now(), grace)
    deleted = deleted_bytes = 0
    with repo.lock("exclusive", "gc", ctx.clock) as lock:
        # the manifests first (sorted before the first verdict), then one streamed pass over
        # the blobs (no writer can add any: the exclusive lock keeps backups out)
        referenced = referenced_blobs(repo, ctx, sort_run=sort_run)
        batch: list[BlobInfo] = []

        def flush() -> None:
            nonlocal deleted, deleted_bytes
            ctx.check()
            lock.check()
            repo.delete_blobs([blob.blob_id for blob in batch])  # S3: one request
            deleted += len(batch)
            deleted_bytes += sum(blob.size_bytes for blob in batch)
            ctx.report("gc", deleted, None, unit="blobs")
            batch.clear()

        for blob, verdict in judge_blobs(repo.blobs(), referenced, tally):
            if verdict is Verdict.DELETE and not dry_run:
                batch.append(blob)
                if len(batch) == DELETE_BATCH:
                    flush()
        if batch:
            flush()
    plan = tally.plan()
    if dry_run:
        return GcResult(plan=plan, dry_run=True, deleted=0, deleted_bytes=0)
    ctx.report("gc", deleted, deleted, unit="blobs")
    log.info("garbage collection deleted %d blobs (%d bytes)", deleted, deleted_bytes)
    return GcResult(plan=plan, dry_run=False, deleted=deleted, deleted_bytes=deleted_bytes)
