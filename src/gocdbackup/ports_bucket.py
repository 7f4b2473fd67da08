"""L1: the port of a bucket's own history (:class:`VersionedBucket`): its settings, every
version of every key, and the server-side operations that roll it to a point in time.  The
S3 and GCS drivers implement it (:mod:`gocdbackup.drivers.bucket_versions`), the fake in
:mod:`gocdbackup.testing` keeps a history in memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from gocdbackup.model.bucket_versions import ObjectVersion, PitStep
from gocdbackup.model.store_audit import BucketSettings


class VersionedBucket(Protocol):
    @property
    def url(self) -> str:
        """Where it is, safe to show."""
        ...

    def settings(self) -> BucketSettings:
        """Versioning, lifecycle, replication, lock, encryption, public access."""
        ...

    def versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        """Every version and delete marker of every key under ``prefix``, in key order
        (within a key, newest first), streamed page by page."""
        ...

    def current(self, prefix: str = "") -> Iterator[ObjectVersion]:
        """The current object of every key under ``prefix`` (no markers), in key order."""
        ...

    def restore(self, steps: Sequence[PitStep]) -> dict[str, str]:
        """Make each step's version of its key the current object again, by a server-side copy
        (the newer versions stay as history), concurrently; the keys that failed, each with
        the store's reason (an error code)."""
        ...

    def delete(self, keys: Sequence[str]) -> dict[str, str]:
        """Delete each key (on a versioned bucket: a delete marker, the bytes stay a
        version); the keys that failed, with the reason."""
        ...

    def copy_into(self, steps: Sequence[PitStep], other: VersionedBucket) -> dict[str, str]:
        """Copy each step's version of its key to the same key in ``other`` (server-side where
        both are on one provider); the keys that failed, with the reason."""
        ...
