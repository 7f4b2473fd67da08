"""L1: the port of a flat key → bytes store (:class:`ObjectStore`): the repository and
gocdnext's artefact store are both one.  :mod:`gocdbackup.drivers.fsspec_store` implements it
over any fsspec URL, :class:`gocdbackup.testing.MemoryStore` in memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from attrs import frozen

from gocdbackup.errors import ObjectMissing


class DumpStream(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


@frozen(kw_only=True)
class ObjectInfo:
    key: str
    size_bytes: int
    #: when the object was last written, where the store says (None where it does not)
    modified_at: datetime | None = None
    #: the store's id of this version of the object, where it has one: an S3 VersionId
    #: (version-aware stores on versioned buckets), a GCS generation
    version: str | None = None


class ObjectStore(Protocol):
    """A flat key → bytes store (a directory, a bucket, a prefix in a bucket)."""

    @property
    def url(self) -> str:
        """Where it is, safe to show (no credentials)."""
        ...

    def read(self, key: str) -> bytes:
        """The whole object; :class:`~gocdbackup.errors.ObjectMissing` if absent."""
        ...

    def write(self, key: str, data: bytes) -> None:
        """Create or replace ``key`` atomically: readers see the old or the new bytes, never a
        mix."""
        ...

    def exists(self, key: str) -> bool: ...

    def location_exists(self) -> bool:
        """Whether the store's location is there at all: the directory of a file store, the
        bucket of an object store (an existing but empty one counts).  A mistyped URL is
        told apart from an empty store by this."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in one listing pass."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error."""
        ...

    def scan(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` and sorts after ``start_after``, in
        ascending key order (Python ``str`` order, which is UTF-8 byte order), streamed page
        by page: memory stays bounded whatever the store's size.  Unlike :meth:`list` it
        hides nothing but this library's own temporary files."""
        ...

    def stat(self, key: str) -> ObjectInfo | None:
        """``key``'s size, write time and version now, or None if there is no such object."""
        ...

    def open_read(
        self, key: str, size_hint: int | None = None, version: str | None = None
    ) -> AbstractContextManager[DumpStream]:
        """A stream of ``key``'s bytes (for objects too big to hold in memory);
        :class:`~gocdbackup.errors.ObjectMissing` if absent.  ``size_hint`` (the size a
        listing reported) lets a store fetch small objects in one request; ``version`` (an
        :attr:`ObjectInfo.version` the listing reported) asks for that version of the object,
        where the store can (stores without versions read the current object)."""
        ...

    def read_many(self, wanted: Sequence[tuple[str, str | None]]) -> dict[str, bytes]:
        """The whole content of each ``(key, version)`` in ``wanted`` (small objects; the
        version as in :meth:`open_read`), fetched concurrently where the store can: one call
        for many small objects.  Keys that do not exist are absent from the answer; any other
        failure raises."""
        ...

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        """Create or replace ``key`` from ``chunks``, atomically (readers never see a partial
        object, and a failure leaves the old object); the number of bytes written."""
        ...

    def delete_many(self, keys: Sequence[str]) -> None:
        """Remove every key of ``keys`` (missing ones are no error) in as few requests as the
        store allows (S3: 1,000 keys a request; GCS: 100 a batch); any key that could not be
        deleted raises :class:`~gocdbackup.errors.StorageError`, naming it."""
        ...


class ObjectListing(Protocol):
    """A listing of an object store taken at one instant and read instead of listing the
    store (a bucket inventory: :mod:`gocdbackup.drivers.inventory`).  It cannot know of
    objects written after :attr:`taken_at`."""

    @property
    def url(self) -> str:
        """Where the listing was read (secret-free)."""
        ...

    @property
    def taken_at(self) -> datetime:
        """The instant it describes."""
        ...

    def scan(self, start_after: str = "") -> Iterator[ObjectInfo]:
        """Its objects after ``start_after``, in key order (keys relative to the store)."""
        ...


def read_each(store: ObjectStore, wanted: Sequence[tuple[str, str | None]]) -> dict[str, bytes]:
    """:meth:`ObjectStore.read_many` one object at a time, for stores that cannot do better."""
    out = {}
    for key, version in wanted:
        try:
            with store.open_read(key, None, version) as stream:
                out[key] = stream.read()
        except ObjectMissing:
            continue
    return out


def delete_each(store: ObjectStore, keys: Sequence[str]) -> None:
    """:meth:`ObjectStore.delete_many` one key at a time, for stores that cannot do better."""
    for key in keys:
        store.delete(key)
