"""Writing a backup's artefact objects back into a store: each verified chunk by chunk before
it lands, only where the object is missing or different, with bounded concurrency."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from gocdbackup.context import OpContext
from gocdbackup.errors import IntegrityError, ObjectMissing
from gocdbackup.model.artifacts import (
    ArtifactEntry,
    ArtifactIndex,
    ArtifactRestore,
    ObjectRef,
)
from gocdbackup.model.keys import check_object_key
from gocdbackup.ops._objects import hashing, object_sha256
from gocdbackup.ops.artifacts import DEFAULT_WORKERS
from gocdbackup.ports import ObjectStore
from gocdbackup.repository import (
    Repository,
    read_stream,
)

log = logging.getLogger("gocdbackup.ops.artifact_restore")

#: a restore of at most this many objects looks each up instead of listing the store
STAT_LIMIT = 256


# -- restore ----------------------------------------------------------------------------------


Selector = Callable[[ObjectRef], bool]


def select(
    *,
    project: str | None = None,
    pipeline: str | None = None,
    run: str | None = None,
    prefix: str | None = None,
) -> Selector:
    """A selector for :func:`restore_artifacts` (all given conditions must hold)."""

    def chosen(ref: ObjectRef) -> bool:
        return (
            (project is None or ref.project_id == project)
            and (pipeline is None or ref.pipeline_id == pipeline)
            and (run is None or ref.run_id == run)
            and (prefix is None or ref.key.startswith(prefix))
        )

    return chosen


def restore_artifacts(
    repo: Repository,
    index: ArtifactIndex,
    store: ObjectStore,
    *,
    ctx: OpContext,
    only: Selector | None = None,
    workers: int = DEFAULT_WORKERS,
) -> ArtifactRestore:
    """Write every stored object of ``index`` (or those ``only`` selects) back under its key.
    Objects already there with the right SHA-256 are skipped; different content is replaced;
    nothing outside the index is touched.  Every key is checked before anything is written."""
    entries = [e for e in index.entries if e.outcome.stored and (only is None or only(e.ref))]
    for e in entries:
        check_object_key(e.ref.key)  # refuses "..", absolute and empty keys, before any write
    # a few objects (a selective restore, a recovery): ask for each; many: list the store once
    present = {i.key: i for i in store.list("")} if len(entries) > STAT_LIMIT else None
    done = written = skipped = nbytes = 0
    lock = threading.Lock()

    def restore_one(entry: ArtifactEntry) -> None:
        nonlocal done, written, skipped, nbytes
        ctx.check()
        info = present.get(entry.ref.key) if present is not None else store.stat(entry.ref.key)
        same = (
            info is not None
            and info.size_bytes == entry.size_bytes
            and _sha_of(store, entry.ref.key) == entry.sha256
        )
        if not same:
            n = store.write_stream(entry.ref.key, _verified(repo, entry, ctx))
        with lock:
            done += 1
            if same:
                skipped += 1
            else:
                written += 1
                nbytes += n
            ctx.report("restore-artifacts", done, len(entries), unit="objects")

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gocdbackup-obj") as pool:
        list(pool.map(restore_one, entries))
    return ArtifactRestore(written=written, skipped=skipped, bytes_written=nbytes)


def _sha_of(store: ObjectStore, key: str) -> str:
    try:
        return object_sha256(store, key)
    except ObjectMissing:
        return ""


def _verified(repo: Repository, entry: ArtifactEntry, ctx: OpContext) -> Iterable[bytes]:
    digest = hashlib.sha256()
    yield from hashing(read_stream(repo, entry.chunks, ctx, phase="restore-object"), digest)
    if digest.hexdigest() != entry.sha256:
        raise IntegrityError(f"{entry.ref.key}: the stored copy does not match its SHA-256")
