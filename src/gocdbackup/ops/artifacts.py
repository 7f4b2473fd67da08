"""The artefact store in a backup: copy exactly the objects the snapshot's rows reference, each
once across all backups (keyed by the SHA-256 gocdnext records), resumable from a journal."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import attrs

from gocdbackup.context import OpContext
from gocdbackup.errors import ObjectMissing, StorageError
from gocdbackup.model.artifacts import (
    ArtifactEntry,
    ArtifactIndex,
    ObjectKind,
    ObjectRef,
    Outcome,
    content_key,
)
from gocdbackup.model.backup import ChunkRef
from gocdbackup.ports import GocdnextData, ObjectInfo, ObjectListing, ObjectStore
from gocdbackup.repository import (
    Repository,
    chunk_bytes,
    chunk_stream,
)
from gocdbackup.repository.journal import Journal

log = logging.getLogger("gocdbackup.ops.artifacts")

#: objects copied or restored at once
DEFAULT_WORKERS = 8


# -- backup -----------------------------------------------------------------------------------


class _Known:
    """Blob ids in the repository, shared by the copy workers."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes
        self._lock = threading.Lock()

    def claim(self, blob_id: str) -> bool:
        """True if the caller must write ``blob_id`` (nobody has or is writing it)."""
        with self._lock:
            if blob_id in self.sizes:
                return False
            self.sizes[blob_id] = 0  # being written; the size follows
            return True

    def set(self, blob_id: str, stored: int) -> None:
        with self._lock:
            self.sizes[blob_id] = stored

    def get(self, blob_id: str) -> int:
        with self._lock:
            return self.sizes.get(blob_id, 0)

    def has(self, blob_id: str) -> bool:
        with self._lock:
            return blob_id in self.sizes


def backup_artifacts(
    repo: Repository,
    refs: list[ObjectRef],
    store: ObjectStore,
    db: GocdnextData | None,
    *,
    previous: ArtifactIndex | None,
    known: dict[str, int],
    ctx: OpContext,
    journal: Journal | None = None,
    workers: int = DEFAULT_WORKERS,
    inventory: ObjectListing | None = None,
) -> ArtifactIndex:
    """Copy the objects ``refs`` name (read in the backup's snapshot) from ``store``.

    Artefacts an earlier backup holds with the same key, SHA-256 and size are reused without
    looking at the store (gocdnext never rewrites an artefact).  The rest are looked up in one
    listing of the store (or, for a nightly backup, of only the prefixes they live under);
    those an earlier backup holds with the same write time and size are reused, the others
    streamed in parallel, their SHA-256 and size checked against the database's record while
    they stream, at the version the listing saw where the store keeps versions.  An object
    that vanished is "expired during backup" if gocdnext has retired its row meanwhile, else
    "missing" (without ``db``: "missing", for the caller to check later, as the last step of a
    sharded backup does).

    With ``inventory`` (a bucket inventory) the store is not listed: artefacts and log archives
    (never rewritten) are taken from the inventory; caches (rewritten in place) and objects
    the inventory does not hold (written after it) are looked up one by one.
    """
    immutable = previous.immutable() if previous else {}
    reusable = previous.by_content() if previous else {}
    shared = _Known(known)
    entries: list[ArtifactEntry] = []
    look: list[ObjectRef] = []
    for ref in refs:
        if not ref.wanted:
            entries.append(ArtifactEntry(ref=ref, outcome=Outcome.NOT_READY))
        elif (held := _held(ref, immutable.get(ref.key), shared)) is not None:
            entries.append(held)
        else:
            look.append(ref)
    listing = (
        _listing(store, look, scoped=previous is not None)
        if inventory is None
        else _from_inventory(store, look, inventory, workers)
    )
    to_copy: list[ObjectRef] = []
    absent: list[ObjectRef] = []
    for ref in look:
        info = listing.get(ref.key)
        if info is None:
            absent.append(ref)
        elif (old := _reusable(ref, info, reusable, shared)) is not None:
            entries.append(old)
        else:
            to_copy.append(ref)
    copy = _Copier(
        repo, store, listing, shared=shared, ctx=ctx, journal=journal, total=len(to_copy)
    )
    ctx.report("artifacts", 0, copy.total, unit="objects")
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gocdbackup-obj") as pool:
            for results in pool.map(copy, _batches(to_copy, listing)):
                for result in results:
                    if isinstance(result, ObjectRef):
                        absent.append(result)
                    else:
                        entries.append(result)
    finally:
        if journal is not None:
            journal.flush()  # what an interrupted run copied, for the next run to reuse
    entries.extend(absent_entries(absent, db))
    index = ArtifactIndex(entries=tuple(sorted(entries, key=lambda e: e.ref.key)))
    log.info("artefacts: %s", index.counts())
    return index


class _Copier:
    """Copies one batch of objects (a large one alone, or small ones fetched together)."""

    def __init__(
        self,
        repo: Repository,
        store: ObjectStore,
        listing: dict[str, ObjectInfo],
        *,
        shared: _Known,
        ctx: OpContext,
        journal: Journal | None,
        total: int,
    ) -> None:
        self.repo, self.store, self.listing, self.shared = repo, store, listing, shared
        self.ctx, self.journal, self.total = ctx, journal, total
        self.done = 0
        self._lock = threading.Lock()

    def __call__(self, batch: list[ObjectRef]) -> list[ArtifactEntry | ObjectRef]:
        ctx, listing = self.ctx, self.listing
        ctx.check()
        small = _is_small(listing[batch[0].key])  # batches never mix small and large
        fetched = (
            self.store.read_many([(r.key, listing[r.key].version) for r in batch]) if small else {}
        )
        results: list[ArtifactEntry | ObjectRef] = []
        for ref in batch:
            ctx.check()
            try:
                if small and ref.key not in fetched:
                    raise ObjectMissing(ref.key)
                entry = _copy_object(
                    self.repo,
                    self.store,
                    ref,
                    info=listing[ref.key],
                    shared=self.shared,
                    ctx=ctx,
                    fetched=fetched.pop(ref.key, None),
                )
            except ObjectMissing:
                results.append(ref)
                continue
            if self.journal is not None:
                line = json.dumps(entry.to_dict(), separators=(",", ":")).encode() + b"\n"
                self.journal.record(line)
            with self._lock:
                self.done += 1
                ctx.report("artifacts", self.done, self.total, unit="objects", message=ref.key)
            results.append(entry)
        return results


#: objects up to this size are fetched SMALL_BATCH at a time, in one call to the store
SMALL_OBJECT = 256 * 1024
SMALL_BATCH = 16


def _is_small(info: ObjectInfo) -> bool:
    return info.size_bytes <= SMALL_OBJECT


def _batches(refs: list[ObjectRef], listing: dict[str, ObjectInfo]) -> Iterator[list[ObjectRef]]:
    """Large objects one by one (streamed), small ones in groups (fetched together)."""
    small: list[ObjectRef] = []
    for ref in refs:
        if not _is_small(listing[ref.key]):
            yield [ref]
            continue
        small.append(ref)
        if len(small) == SMALL_BATCH:
            yield small
            small = []
    if small:
        yield small


#: above this many prefixes to look under, one listing of the whole store is cheaper
MAX_SCOPED_LISTINGS = 64


def scope_of(key: str) -> str:
    """The prefix a nightly backup lists to find ``key``: its first two path segments
    (``run/<run_id>/``, ``cache/<project_id>/``), or its first (``logs/``)."""
    parts = key.split("/")
    if len(parts) > 2:
        return f"{parts[0]}/{parts[1]}/"
    return f"{parts[0]}/" if len(parts) == 2 else ""


def _listing(store: ObjectStore, refs: list[ObjectRef], *, scoped: bool) -> dict[str, ObjectInfo]:
    """The store's entries for ``refs``: from one listing of the whole store, or with
    ``scoped`` and few enough prefixes, from listings of only the prefixes they live under.
    A store that holds none of them at all is refused (a wrong URL or a lost bucket)."""
    if not refs:
        return {}
    scopes = sorted({scope_of(r.key) for r in refs})
    if scoped and "" not in scopes and len(scopes) <= MAX_SCOPED_LISTINGS:
        found = {i.key: i for scope in scopes for i in store.list(scope)}
        if found:
            return found
    found = {info.key: info for info in store.list("")}
    if not found:
        raise StorageError(
            f"the artefact store {store.url} holds none of the {len(refs)} objects the database "
            "references: a wrong URL, a missing bucket, or a lost store; nothing was committed"
        )
    return found


def _from_inventory(
    store: ObjectStore, refs: list[ObjectRef], inventory: ObjectListing, workers: int
) -> dict[str, ObjectInfo]:
    """The store's entries for ``refs``, from ``inventory`` where it can know them."""
    if not refs:
        return {}
    immutable = {r.key for r in refs if r.kind is not ObjectKind.CACHE}
    found = {info.key: info for info in inventory.scan() if info.key in immutable}
    rest = [r.key for r in refs if r.key not in found]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gocdbackup-stat") as pool:
        for key, info in zip(rest, pool.map(store.stat, rest), strict=True):
            if info is not None:
                found[key] = info
    if not found:
        raise StorageError(
            f"neither the inventory {inventory.url} nor the artefact store {store.url} holds "
            f"any of the {len(refs)} objects the database references: a wrong URL or a lost "
            "store; nothing was committed"
        )
    return found


def _held(ref: ObjectRef, old: ArtifactEntry | None, shared: _Known) -> ArtifactEntry | None:
    """The earlier copy of an artefact (same key, SHA-256 and size), if its blobs remain."""
    if old is None or (ref.kind, ref.sha256, ref.size_bytes) != (
        old.ref.kind,
        old.sha256,
        old.size_bytes,
    ):
        return None
    return _reuse(old, ref, shared)


def _reuse(old: ArtifactEntry | None, ref: ObjectRef, shared: _Known) -> ArtifactEntry | None:
    """``old`` standing for ``ref`` in this backup, unless its blobs are gone (collected)."""
    if old is None or not all(shared.has(c.blob_id) for c in old.chunks):
        return None
    return attrs.evolve(old, ref=ref, outcome=Outcome.REUSED)


def _reusable(
    ref: ObjectRef,
    info: ObjectInfo,
    reusable: dict[tuple[str, str, int], ArtifactEntry],
    shared: _Known,
) -> ArtifactEntry | None:
    return _reuse(
        reusable.get(content_key(ref.key, ref.sha256, info.modified_at, info.size_bytes)),
        ref,
        shared,
    )


def _copy_object(
    repo: Repository,
    store: ObjectStore,
    ref: ObjectRef,
    *,
    info: ObjectInfo,
    shared: _Known,
    ctx: OpContext,
    fetched: bytes | None = None,
) -> ArtifactEntry:
    """Copy one object (``fetched``, if it was already read), checking it against its row."""
    digest = hashlib.sha256()
    chunks: list[ChunkRef] = []
    size = 0
    with _pieces(repo, store, ref, info, fetched) as pieces:
        for data in pieces:
            ctx.check()
            blob_id = repo.codec.blob_id(data)
            digest.update(data)
            size += len(data)
            if shared.claim(blob_id):
                shared.set(blob_id, repo.put_blob(blob_id, data))
            chunks.append(
                ChunkRef(blob_id=blob_id, size_bytes=len(data), stored_bytes=shared.get(blob_id))
            )
    sha = digest.hexdigest()
    finding = ""
    if ref.sha256 and ref.sha256 != sha:
        finding = "content differs from the database's SHA-256"
    elif ref.size_bytes is not None and ref.size_bytes != size:
        finding = f"size {size} differs from the database's {ref.size_bytes}"
    if finding:
        log.warning("%s: %s", ref.key, finding)
    return ArtifactEntry(
        ref=ref,
        outcome=Outcome.COPIED,
        chunks=tuple(chunks),
        size_bytes=size,
        sha256=sha,
        modified_at=info.modified_at,
        version=info.version,
        finding=finding,
    )


@contextmanager
def _pieces(
    repo: Repository,
    store: ObjectStore,
    ref: ObjectRef,
    info: ObjectInfo,
    fetched: bytes | None,
) -> Iterator[Iterator[bytes]]:
    """The chunks of one object: of ``fetched`` if it was already read, else streamed."""
    if fetched is not None:
        yield chunk_bytes(fetched, repo.chunker)
        return
    with store.open_read(ref.key, info.size_bytes, info.version) as stream:
        yield chunk_stream(stream, repo.chunker)


def absent_entries(absent: list[ObjectRef], db: GocdnextData | None) -> list[ArtifactEntry]:
    """Entries for objects not found in the store: "expired during backup" where gocdnext
    has retired the row since the snapshot, else "missing" (all "missing" without ``db``)."""
    if not absent:
        return []
    if db is None:
        finding = "not in the store"
        return [ArtifactEntry(ref=r, outcome=Outcome.MISSING, finding=finding) for r in absent]
    now = db.object_rows_now(r.key for r in absent)
    out = []
    for ref in absent:
        retired = now.get(ref.key) in (None, "deleting")
        outcome = Outcome.EXPIRED if retired else Outcome.MISSING
        finding = "" if retired else "a ready row references it, but it is not in the store"
        out.append(ArtifactEntry(ref=ref, outcome=outcome, finding=finding))
    return out
