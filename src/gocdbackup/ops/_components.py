"""Reading a stored component back with every check: presence, authentication, ids, total
size and whole-stream SHA-256."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from gocdbackup.context import OpContext
from gocdbackup.errors import IntegrityError
from gocdbackup.model.backup import ChunkRef, Component
from gocdbackup.repository import Repository, read_stream


def missing_chunks(chunks: Iterable[ChunkRef], stored: dict[str, int]) -> list[str]:
    """Blob ids among ``chunks`` that the repository listing does not have."""
    return sorted({c.blob_id for c in chunks if c.blob_id not in stored})


def wrong_size_chunks(chunks: Iterable[ChunkRef], stored: dict[str, int]) -> list[str]:
    """Blob ids present with another size than the manifest recorded (truncated, replaced)."""
    return sorted(
        {
            c.blob_id
            for c in chunks
            if c.stored_bytes and c.blob_id in stored and stored[c.blob_id] != c.stored_bytes
        }
    )


def checked_stream(
    repo: Repository, component: Component, ctx: OpContext, *, phase: str
) -> Iterator[bytes]:
    """The component's bytes; raises :class:`IntegrityError` on any mismatch, at the latest
    after the last chunk (before the consumer can treat the stream as complete)."""
    digest = hashlib.sha256()
    size = 0
    for data in read_stream(repo, component.chunks, ctx, phase=phase, total=component.size_bytes):
        digest.update(data)
        size += len(data)
        yield data
    if size != component.size_bytes or digest.hexdigest() != component.sha256:
        raise IntegrityError(f"the {component.kind} stream does not match its recorded SHA-256")
