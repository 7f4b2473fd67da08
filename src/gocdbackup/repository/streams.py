"""Writing a stream into the repository as chunks, and reading it back, in parallel with
bounded memory (about ``max_chunk_size * window`` bytes in flight)."""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import closing

from gocdbackup.context import OpContext
from gocdbackup.errors import IntegrityError
from gocdbackup.model.backup import ChunkRef, Component
from gocdbackup.repository.repo import Repository

log = logging.getLogger("gocdbackup.repository")

DEFAULT_WORKERS = 4


def store_stream(
    repo: Repository,
    chunks: Iterable[bytes],
    *,
    kind: str,
    known: dict[str, int],
    ctx: OpContext,
    phase: str = "backup",
    total_hint: int | None = None,
    workers: int = DEFAULT_WORKERS,
) -> Component:
    """Store every chunk the repository does not already hold; describe the stream.

    ``known`` maps blob ids already in the repository to their stored size; it is updated with
    what this call writes (so a second stream in the same backup dedups against the first).
    """
    digest = hashlib.sha256()
    chunk_ids: list[tuple[str, int]] = []  # (blob id, plaintext size), in stream order
    size = reused = stored = 0
    pending: deque[tuple[str, Future[int]]] = deque()
    in_flight: set[str] = set()
    window = workers * 2

    def drain(limit: int) -> None:
        nonlocal stored
        while len(pending) > limit:
            blob_id, future = pending.popleft()
            known[blob_id] = future.result()  # the stored size, for this and later streams
            stored += known[blob_id]

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gocdbackup-put") as pool:
        try:
            for data in chunks:
                ctx.check()
                blob_id = repo.codec.blob_id(data)
                digest.update(data)
                chunk_ids.append((blob_id, len(data)))
                size += len(data)
                if blob_id in known or blob_id in in_flight:
                    reused += len(data)
                else:
                    in_flight.add(blob_id)
                    pending.append((blob_id, pool.submit(repo.put_blob, blob_id, data)))
                    drain(window)
                ctx.report(phase, size, total_hint)
            drain(0)
        except BaseException:
            for _, f in pending:
                f.cancel()
            raise
    refs = [ChunkRef(blob_id=b, size_bytes=n, stored_bytes=known[b]) for b, n in chunk_ids]
    log.debug("stored %s: %d chunks, %d bytes, %d reused", kind, len(refs), size, reused)
    return Component(
        kind=kind,
        size_bytes=size,
        sha256=digest.hexdigest(),
        chunks=tuple(refs),
        stored_bytes=stored,
        reused_bytes=reused,
    )


def read_stream(
    repo: Repository,
    refs: Iterable[ChunkRef],
    ctx: OpContext,
    *,
    phase: str = "read",
    total: int | None = None,
    workers: int = DEFAULT_WORKERS,
) -> Iterator[bytes]:
    """Every chunk's plaintext, in order, each authenticated and checked against its id."""
    done = 0
    with closing(fetch_chunks(repo, refs, ctx, workers=workers)) as fetched:
        for ref, fut in fetched:
            data = fut.result()
            if len(data) != ref.size_bytes:
                raise IntegrityError(f"blob {ref.blob_id[:12]}… has the wrong size")
            done += len(data)
            ctx.report(phase, done, total)
            yield data


def fetch_chunks(
    repo: Repository,
    refs: Iterable[ChunkRef],
    ctx: OpContext,
    *,
    workers: int = DEFAULT_WORKERS,
) -> Generator[tuple[ChunkRef, Future[bytes]], None, None]:
    """Each chunk with the finished read of its blob, in order, read ``workers`` at a time with
    at most ``2 * workers`` blobs in flight; ``future.result()`` is the plaintext or raises what
    :meth:`Repository.get_blob` raised, so a consumer may go on past a damaged blob."""
    pending: deque[tuple[ChunkRef, Future[bytes]]] = deque()
    it = iter(refs)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gocdbackup-get") as pool:
        try:
            while True:
                while len(pending) < workers * 2:
                    ref = next(it, None)
                    if ref is None:
                        break
                    pending.append((ref, pool.submit(repo.get_blob, ref.blob_id)))
                if not pending:
                    return
                ctx.check()
                ref, fut = pending.popleft()
                wait([fut])
                yield ref, fut
        finally:
            for _, f in pending:
                f.cancel()


def read_range(
    repo: Repository,
    refs: Sequence[ChunkRef],
    start: int,
    end: int,
    ctx: OpContext,
    *,
    workers: int = 2,
) -> Iterator[bytes]:
    """Bytes ``[start, end)`` of the stream ``refs`` make, read from the chunks that hold them
    (each authenticated and checked against its id like :func:`read_stream`'s)."""
    if start >= end:
        return
    at = 0
    wanted: list[tuple[ChunkRef, int]] = []  # (chunk, its offset in the stream)
    for ref in refs:
        if at + ref.size_bytes > start and at < end:
            wanted.append((ref, at))
        at += ref.size_bytes
        if at >= end:
            break
    if at < end:
        raise IntegrityError(f"bytes up to {end} were asked of a stream of {at}")
    offsets = iter(offset for _, offset in wanted)
    with closing(fetch_chunks(repo, [r for r, _ in wanted], ctx, workers=workers)) as fetched:
        for ref, fut in fetched:
            data = fut.result()
            if len(data) != ref.size_bytes:
                raise IntegrityError(f"blob {ref.blob_id[:12]}… has the wrong size")
            offset = next(offsets)
            yield data[max(start - offset, 0) : min(end - offset, len(data))]
