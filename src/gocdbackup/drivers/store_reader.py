"""A read stream of an :class:`~gocdbackup.drivers.fsspec_store.FsspecStore` object whose
vendor errors arrive as gocdbackup errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gocdbackup.drivers.fsspec_store import FsspecStore


class TranslatingReader:
    """A read stream whose vendor errors arrive as gocdbackup errors."""

    def __init__(self, raw: Any, store: FsspecStore, key: str) -> None:
        self._raw = raw
        self._store = store
        self._key = key

    def read(self, n: int = -1, /) -> bytes:
        with self._store._translated("read", self._key):
            return bytes(self._raw.read(n))
