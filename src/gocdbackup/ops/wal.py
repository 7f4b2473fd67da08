"""The WAL archive in the repository: ``push`` (PostgreSQL's ``archive_command``), ``fetch``
(its ``restore_command``) and ``verify`` (gaps per timeline).

A WAL file is stored like any stream: cut into chunks, each compressed, encrypted and named by
its keyed hash (a segment's unused, zeroed tail is one chunk shared by all), then an entry
``records/wal/<name>`` lists them.  The entry is written last: a push that fails half-way
leaves only unreferenced blobs, and PostgreSQL pushes the file again.  Pushing a file that is
archived already with the same content succeeds (PostgreSQL may push again after a crash);
with other content it is refused, loudly, and nothing is overwritten.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Sequence

from gocdbackup.context import OpContext
from gocdbackup.errors import GocdBackupError, IntegrityError, WalConflict, WalMissing
from gocdbackup.model.backup import BackupSet, ChunkRef
from gocdbackup.model.wal import (
    DEFAULT_SEGMENT_BYTES,
    WalEntry,
    WalReport,
    check_archive,
    check_wal_name,
    lsn_segment,
    prunable,
)
from gocdbackup.repository import Repository, chunk_bytes, read_stream
from gocdbackup.repository.repo import blob_key

log = logging.getLogger("gocdbackup.ops.wal")

WAL_KIND = "wal"


def push_wal(repo: Repository, name: str, data: bytes, *, ctx: OpContext) -> bool:
    """Archive ``data`` as WAL file ``name``; True if stored now, False if it was archived
    already with the same content.  :class:`WalConflict` if it was, with other content
    (except a ``.partial`` segment, which grows while it is streamed: the newer one replaces
    it)."""
    check_wal_name(name)
    digest = hashlib.sha256(data).hexdigest()
    held = _entry(repo, name)
    if held is not None and name.endswith(".partial") and held.sha256 != digest:
        held = None
    if held is not None:
        if held.sha256 == digest and held.size == len(data):
            log.info("WAL file %s is archived already (same content)", name)
            return False
        raise WalConflict(
            f"WAL file {name} is archived already with other content (SHA-256 "
            f"{held.sha256[:12]}…, {held.size} bytes; this one {digest[:12]}…, {len(data)} "
            "bytes); it was not overwritten. Two servers may be archiving into one repository"
        )
    with repo.lock("shared", "wal push", ctx.clock):
        refs = _store(repo, chunk_bytes(data, repo.chunker), ctx)
        entry = WalEntry(name=name, size=len(data), sha256=digest, chunks=refs, pushed_at=ctx.now())
        repo.write_record(WAL_KIND, name, entry.to_json())
    log.info("archived WAL file %s (%d bytes)", name, len(data))
    return True


def _store(repo: Repository, chunks: Iterable[bytes], ctx: OpContext) -> tuple[ChunkRef, ...]:
    """Each chunk as a blob, written unless the repository holds it already."""
    refs = []
    for data in chunks:
        ctx.check()
        blob_id = repo.codec.blob_id(data)
        stored = 0
        if not repo.store.exists(blob_key(blob_id)):
            stored = repo.put_blob(blob_id, data)
        refs.append(ChunkRef(blob_id=blob_id, size_bytes=len(data), stored_bytes=stored))
    return tuple(refs)


def fetch_wal(repo: Repository, name: str, dest: str, *, ctx: OpContext) -> int:
    """Write archived WAL file ``name`` to ``dest`` (through a temporary file beside it, so a
    failure never leaves a partial file there); its size.  :class:`WalMissing` if it is not
    archived."""
    check_wal_name(name)
    entry = _entry(repo, name)
    if entry is None:
        raise WalMissing(f"WAL file {name} is not in the archive")
    digest = hashlib.sha256()
    partial = f"{dest}.gocdbackup-partial"
    try:
        with open(partial, "wb") as out:
            for data in read_stream(repo, entry.chunks, ctx, phase="wal fetch"):
                digest.update(data)
                out.write(data)
        if digest.hexdigest() != entry.sha256:
            raise IntegrityError(f"WAL file {name} does not match its recorded SHA-256")
        os.replace(partial, dest)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    return entry.size


def verify_wal(repo: Repository, *, ctx: OpContext) -> WalReport:
    """Every timeline's segments from first to last, the gaps between, and entries that are
    unreadable or whose blobs are missing."""
    names = repo.record_ids(WAL_KIND)
    present = repo.blob_sizes()
    damaged = []
    for i, name in enumerate(names):
        ctx.report("wal verify", i + 1, len(names), unit="files")
        entry = _entry(repo, name, strict=False)
        if entry is None or any(c.blob_id not in present for c in entry.chunks):
            damaged.append(name)
    return check_archive(names, damaged)


def prune_wal(
    repo: Repository, backups: Sequence[BackupSet], *, ctx: OpContext, dry_run: bool = False
) -> list[str]:
    """Delete (unless ``dry_run``) the archived WAL no physical backup in ``backups`` needs:
    segments before the one where the oldest of them is consistent (each holds the WAL up to
    that point itself).  Without a physical backup nothing is deleted.  The names."""
    physical = [b for b in backups if b.method == "physical" and b.point.wal_lsn]
    if not physical:
        return []
    names = repo.record_ids(WAL_KIND)
    size = _segment_bytes(repo, names)
    keep_from = min(lsn_segment(b.point.wal_lsn, size) for b in physical)
    doomed = prunable(names, keep_from, size)
    for n, name in enumerate(doomed, 1):
        ctx.check()
        if not dry_run:
            repo.delete_record(WAL_KIND, name)
        ctx.report("wal prune", n, len(doomed), unit="files")
    if doomed and not dry_run:
        log.info("deleted %d archived WAL file(s) no physical backup needs", len(doomed))
    return doomed


def _segment_bytes(repo: Repository, names: Sequence[str]) -> int:
    """The server's WAL segment size: a whole segment's archived size (16 MiB by default)."""
    for name in names:
        if len(name) == 24:
            entry = _entry(repo, name, strict=False)
            if entry is not None and entry.size > 0:
                return entry.size
    return DEFAULT_SEGMENT_BYTES


def wal_blobs(repo: Repository) -> Iterator[str]:
    """Every blob an archived WAL file is made of (garbage collection keeps them), streamed
    (repeats possible)."""
    for name in repo.record_ids(WAL_KIND):
        entry = _entry(repo, name, strict=False)
        if entry is None:
            raise IntegrityError(f"WAL entry {name} is unreadable")
        yield from (c.blob_id for c in entry.chunks)


def _entry(repo: Repository, name: str, *, strict: bool = True) -> WalEntry | None:
    try:
        document = repo.read_record(WAL_KIND, name)
        return None if document is None else WalEntry.from_json(document)
    except (GocdBackupError, ValueError, KeyError, TypeError) as exc:
        if strict:
            raise IntegrityError(f"WAL entry {name} is unreadable ({exc})") from exc
        return None
