"""Reading an object of a store in blocks and hashing it: the one way every use case does it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from gocdbackup.ports import ObjectStore

BLOCK = 1024 * 1024


def object_blocks(store: ObjectStore, key: str, size_hint: int | None = None) -> Iterator[bytes]:
    """``key``'s bytes, a block at a time; :class:`~gocdbackup.errors.ObjectMissing` if absent."""
    with store.open_read(key, size_hint) as stream:
        while block := stream.read(BLOCK):
            yield block


def object_sha256(store: ObjectStore, key: str, size_hint: int | None = None) -> str:
    """The SHA-256 (hex) of ``key``'s content; :class:`~gocdbackup.errors.ObjectMissing` if
    absent."""
    digest = hashlib.sha256()
    for block in object_blocks(store, key, size_hint):
        digest.update(block)
    return digest.hexdigest()


def hashing(chunks: Iterable[bytes], digest: Any) -> Iterator[bytes]:
    """``chunks`` unchanged, fed to ``digest`` on the way through."""
    for chunk in chunks:
        digest.update(chunk)
        yield chunk
