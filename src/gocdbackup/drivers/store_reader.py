"""A read stream of a store's object whose vendor errors arrive as gocdbackup errors (the
store gives the translation: :meth:`~gocdbackup.drivers.fsspec_store.FsspecStore._translated`)."""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

#: ``translated(what, key)``: a context in which vendor errors become gocdbackup errors
Translation = Callable[[str, str], AbstractContextManager[None]]


class TranslatingReader(io.RawIOBase):
    """A read stream whose vendor errors arrive as gocdbackup errors (a raw binary stream:
    wrap it in :class:`io.BufferedReader` for text or line reading)."""

    def __init__(self, raw: Any, translated: Translation, key: str) -> None:
        super().__init__()
        self._raw = raw
        self._translated = translated
        self._key = key

    def read(self, n: int = -1, /) -> bytes:
        with self._translated("read", self._key):
            return bytes(self._raw.read(n))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
