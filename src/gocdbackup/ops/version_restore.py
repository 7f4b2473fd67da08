"""A backup's artefacts put back from the bucket's own versions: each object the backup
recorded with a version id gets that version back by a server-side copy (no bytes through
us, and an object overwritten since the backup comes back as it was); objects without a
version, or whose version is gone, are written from the repository as usual."""

from __future__ import annotations

from gocdbackup.context import OpContext
from gocdbackup.model.artifacts import ArtifactIndex, ArtifactRestore
from gocdbackup.model.bucket_versions import ObjectVersion, PitAction, PitStep, same_content
from gocdbackup.ops.artifact_restore import Selector, restore_artifacts
from gocdbackup.ops.artifacts import DEFAULT_WORKERS
from gocdbackup.ops.bucket_pit import run_in_batches
from gocdbackup.ports import ObjectStore
from gocdbackup.ports_bucket import VersionedBucket
from gocdbackup.repository import Repository


def _listing(
    bucket: VersionedBucket, keys: set[str]
) -> tuple[dict[str, ObjectVersion], dict[str, dict[str, ObjectVersion]]]:
    """For the keys wanted: the current object of each (absent: deleted), and every version
    the bucket still keeps, by id."""
    current: dict[str, ObjectVersion] = {}
    kept: dict[str, dict[str, ObjectVersion]] = {}
    for version in bucket.versions():
        if version.key not in keys or version.deleted:
            continue
        kept.setdefault(version.key, {})[version.version] = version
        if version.latest:
            current[version.key] = version
    return current, kept


def restore_from_versions(
    repo: Repository,
    index: ArtifactIndex,
    bucket: VersionedBucket,
    store: ObjectStore,
    *,
    ctx: OpContext,
    only: Selector | None = None,
    workers: int = DEFAULT_WORKERS,
) -> ArtifactRestore:
    """Every stored object of ``index`` (or those ``only`` selects) current again in the
    bucket: at its recorded version where the bucket still keeps it (a server-side copy;
    nothing done where that version is current), from the repository otherwise (and where a
    server-side copy failed)."""
    entries = [e for e in index.entries if e.outcome.stored and (only is None or only(e.ref))]
    current, kept = _listing(bucket, {e.ref.key for e in entries})
    steps: list[PitStep] = []
    skipped = 0
    by_bytes: set[str] = set()
    for e in entries:
        key = e.ref.key
        then = kept.get(key, {}).get(e.version or "")
        now = current.get(key)
        if then is not None and now is not None and same_content(now, then):
            skipped += 1  # that version, or a copy of it, is current
        elif then is not None:
            steps.append(
                PitStep(
                    key=key, action=PitAction.RESTORE, version=e.version, size_bytes=e.size_bytes
                )
            )
        else:
            by_bytes.add(key)
    failed = run_in_batches(
        bucket.restore, steps, ctx=ctx, phase="restore-artifacts", message="from versions"
    )
    by_bytes |= set(failed)
    copied = (
        restore_artifacts(
            repo, index, store, ctx=ctx, only=lambda ref: ref.key in by_bytes, workers=workers
        )
        if by_bytes
        else ArtifactRestore(written=0, skipped=0, bytes_written=0)
    )
    rolled = len(steps) - len(failed)
    return ArtifactRestore(
        written=copied.written + rolled,
        skipped=skipped + copied.skipped,
        bytes_written=copied.bytes_written,
        from_versions=rolled,
    )
