"""A versioned bucket in memory (a :class:`~gocdbackup.ports_bucket.VersionedBucket`): every
write is a new version, every delete a marker, stamped by the clock it is given, so a test can
write a history and roll it back without a server."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime

import attrs

from gocdbackup.context import Clock, SystemClock
from gocdbackup.model.bucket_versions import ObjectVersion, PitStep, live_at
from gocdbackup.model.store_audit import BucketSettings
from gocdbackup.ports_bucket import VersionedBucket


class FakeVersionedBucket:
    """``versioning``: "enabled", "suspended" or "off" (settings only: the history is kept
    either way).  ``fail`` maps keys to an error code every operation on them reports."""

    def __init__(
        self,
        url: str = "memory://versioned",
        *,
        clock: Clock | None = None,
        versioning: str = "enabled",
        noncurrent_expiry_days: int | None = 30,
    ) -> None:
        self._url = url
        self._clock: Clock = clock or SystemClock()
        self.versioning = versioning
        self.noncurrent_expiry_days = noncurrent_expiry_days
        #: key -> versions, oldest first (bytes None for a delete marker)
        self.history: dict[str, list[tuple[ObjectVersion, bytes | None]]] = {}
        self.fail: dict[str, str] = {}
        self.requests = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"FakeVersionedBucket({self._url!r}, {len(self.history)} keys)"

    def _add(self, key: str, data: bytes | None, at: datetime | None = None) -> str:
        with self._lock:
            versions = self.history.setdefault(key, [])
            versions[:] = [(attrs.evolve(v, latest=False), d) for v, d in versions]
            version = ObjectVersion(
                key=key,
                version=f"v{next(self._ids)}",
                written_at=at or self._clock.now(),
                size_bytes=len(data or b""),
                etag=None if data is None else hashlib.md5(data, usedforsecurity=False).hexdigest(),
                deleted=data is None,
                latest=True,
            )
            versions.append((version, data))
            return version.version

    def write(self, key: str, data: bytes, *, at: datetime | None = None) -> str:
        """A new current version of ``key``; its id."""
        return self._add(key, data, at)

    def remove(self, key: str, *, at: datetime | None = None) -> None:
        """A delete marker on ``key``."""
        self._add(key, None, at)

    def objects(self, at: datetime | None = None) -> dict[str, bytes]:
        """What a read of each key returned at ``at`` (default: now)."""
        out = {}
        for key, versions in self.history.items():
            history = [v for v, _ in reversed(versions)]
            data = dict((v.version, d) for v, d in versions)
            if at is None:
                live = history[0] if not history[0].deleted else None
            else:
                live = live_at(history, at)
            if live is not None:
                out[key] = data[live.version] or b""
        return out

    def settings(self) -> BucketSettings:
        return BucketSettings(
            provider="s3",
            bucket=self._url,
            versioning=self.versioning,
            lifecycle_rules=0 if self.noncurrent_expiry_days is None else 1,
            noncurrent_expiry_days=self.noncurrent_expiry_days,
            replication=False,
            object_lock=False,
            encryption="AES256",
            public_access_blocked=True,
        )

    def versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        self.requests += 1
        for key in sorted(self.history):
            if key.startswith(prefix):
                yield from (v for v, _ in reversed(self.history[key]))

    def current(self, prefix: str = "") -> Iterator[ObjectVersion]:
        return (v for v in self.versions(prefix) if v.latest and not v.deleted)

    def _content(self, step: PitStep) -> bytes | None:
        return dict((v.version, d) for v, d in self.history.get(step.key, [])).get(
            step.version or ""
        )

    def _copy(self, steps: Sequence[PitStep], into: FakeVersionedBucket) -> dict[str, str]:
        self.requests += len(steps)
        failed = {}
        for step in steps:
            data = self._content(step)
            if step.key in self.fail or data is None:
                failed[step.key] = self.fail.get(step.key, "NoSuchVersion")
                continue
            into.write(step.key, data)
        return failed

    def restore(self, steps: Sequence[PitStep]) -> dict[str, str]:
        return self._copy(steps, self)

    def delete(self, keys: Sequence[str]) -> dict[str, str]:
        self.requests += 1
        failed = {}
        for key in keys:
            if key in self.fail:
                failed[key] = self.fail[key]
            else:
                self.remove(key)
        return failed

    def copy_into(self, steps: Sequence[PitStep], other: VersionedBucket) -> dict[str, str]:
        assert isinstance(other, FakeVersionedBucket)
        return self._copy(steps, other)
