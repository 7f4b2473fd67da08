"""An in-memory :class:`~gocdbackup.ports.ObjectStore`, optionally versioned, with fault
injection."""

from __future__ import annotations

import builtins
import io
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from gocdbackup.context import Clock, SystemClock
from gocdbackup.errors import ObjectMissing
from gocdbackup.model.keys import check_object_key
from gocdbackup.ports import ObjectInfo, read_each


class MemoryStore:
    """A thread-safe dict-backed :class:`~gocdbackup.ports.ObjectStore`.

    ``versioned=True`` behaves like a versioned bucket: every write makes a new version (its
    id is reported by :meth:`list`), older versions stay readable with ``open_read(...,
    version=...)`` until the key is deleted.  ``lists`` counts listing calls by prefix."""

    def __init__(
        self, url: str = "memory://fake", *, clock: Clock | None = None, versioned: bool = False
    ) -> None:
        self._url = url
        self._clock: Clock = clock or SystemClock()
        self.objects: dict[str, bytes] = {}
        self.modified: dict[str, datetime] = {}
        self.versions: dict[str, dict[str, bytes]] = {}
        self.versioned = versioned
        self._lock = threading.Lock()
        self.writes = 0
        #: the size of each :meth:`delete_many` request
        self.delete_batches: list[int] = []
        self.lists: list[str] = []
        #: ``(prefix, start_after)`` of every :meth:`scan` call
        self.scans: list[tuple[str, str]] = []
        #: what :meth:`location_exists` answers (False: a mistyped URL)
        self.exists_location = True

    @property
    def url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"MemoryStore({self._url!r}, {len(self.objects)} objects)"

    def read(self, key: str) -> bytes:
        check_object_key(key)
        with self._lock:
            try:
                return self.objects[key]
            except KeyError:
                raise ObjectMissing(key) from None

    def write(self, key: str, data: bytes) -> None:
        check_object_key(key)
        with self._lock:
            self.objects[key] = bytes(data)
            self.modified[key] = self._clock.now()
            self.writes += 1
            if self.versioned:
                history = self.versions.setdefault(key, {})
                history[f"v{self.writes}"] = bytes(data)

    def version_of(self, key: str) -> str | None:
        """The current version id of ``key`` (None on an unversioned store)."""
        with self._lock:
            return self._latest(key)

    def _latest(self, key: str) -> str | None:
        history = self.versions.get(key)
        return next(reversed(history)) if history else None

    def exists(self, key: str) -> bool:
        check_object_key(key)
        with self._lock:
            return key in self.objects

    def location_exists(self) -> bool:
        return self.exists_location

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            self.lists.append(prefix)
            return iter(self._infos(prefix, ""))

    def scan(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            self.scans.append((prefix, start_after))
            return iter(self._infos(prefix, start_after))

    def _infos(self, prefix: str, start_after: str) -> builtins.list[ObjectInfo]:
        """The objects under ``prefix`` after ``start_after``, in key order (lock held)."""
        return [
            self._info(k) for k in sorted(self.objects) if k.startswith(prefix) and k > start_after
        ]

    def _info(self, key: str) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size_bytes=len(self.objects[key]),
            modified_at=self.modified[key],
            version=self._latest(key),
        )

    def stat(self, key: str) -> ObjectInfo | None:
        check_object_key(key)
        with self._lock:
            return self._info(key) if key in self.objects else None

    def delete(self, key: str) -> None:
        check_object_key(key)
        with self._lock:
            self.objects.pop(key, None)
            self.modified.pop(key, None)
            self.versions.pop(key, None)

    def delete_many(self, keys: Sequence[str]) -> None:
        """As S3 does: one request per 1,000 keys (``delete_batches`` records their sizes)."""
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            self.delete_batches.append(len(batch))
            for key in batch:
                self.delete(key)

    @contextmanager
    def open_read(
        self, key: str, size_hint: int | None = None, version: str | None = None
    ) -> Iterator[io.BytesIO]:
        if version is None or not self.versioned:
            yield io.BytesIO(self.read(key))
            return
        with self._lock:
            data = self.versions.get(key, {}).get(version)
        if data is None:
            raise ObjectMissing(f"{key} version {version}")
        yield io.BytesIO(data)

    def read_many(self, wanted: Sequence[tuple[str, str | None]]) -> dict[str, bytes]:
        return read_each(self, wanted)

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        data = b"".join(chunks)  # all or nothing, like the real stores
        self.write(key, data)
        return len(data)

    # -- fault injection ---------------------------------------------------------------------

    def corrupt(self, key: str, *, offset: int = -1) -> None:
        """Flip one byte of ``key`` (the last by default)."""
        with self._lock:
            data = bytearray(self.objects[key])
            data[offset] ^= 0xFF
            self.objects[key] = bytes(data)
