"""A read stream of a store's object whose vendor errors arrive as gocdbackup errors (the
store gives the translation: :meth:`~gocdbackup.drivers.fsspec_store.FsspecStore._translated`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

#: ``translated(what, key)``: a context in which vendor errors become gocdbackup errors
Translation = Callable[[str, str], AbstractContextManager[None]]


class TranslatingReader:
    """A read stream whose vendor errors arrive as gocdbackup errors."""

    def __init__(self, raw: Any, translated: Translation, key: str) -> None:
        self._raw = raw
        self._translated = translated
        self._key = key

    def read(self, n: int = -1, /) -> bytes:
        with self._translated("read", self._key):
            return bytes(self._raw.read(n))
