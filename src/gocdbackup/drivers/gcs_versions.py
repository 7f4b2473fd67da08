""":class:`~gocdbackup.ports_bucket.VersionedBucket` over GCS (JSON API through gcsfs).

GCS keeps a key's history as generations: the live one, and noncurrent ones stamped with
``timeDeleted`` when they were overwritten or deleted.  Where a generation ended and no newer
one began at that instant, the key was deleted: that becomes a delete marker here, so the
pure planner reads S3 and GCS alike.  A restore rewrites the old generation onto its key
(``rewriteTo`` with ``sourceGeneration``, server-side)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from itertools import groupby
from typing import Any

from gocdbackup.drivers.bucket_common import BucketRoot, run_all
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.listing import modified_at
from gocdbackup.errors import ConfigError, StorageError, StoreNotFound
from gocdbackup.model.bucket_versions import ObjectVersion, PitStep
from gocdbackup.model.store_audit import BucketSettings
from gocdbackup.ports_bucket import VersionedBucket

_PAGE = 1000


def _status(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return str(code) if code is not None else type(exc).__name__


def _time(value: str | None) -> datetime | None:
    return modified_at({"updated": value}) if value else None


class GcsVersions(BucketRoot):
    """One GCS bucket (or a prefix in it) and its generations."""

    def __init__(self, store: FsspecStore, *, transfers: int = 16) -> None:
        super().__init__(store, transfers=transfers)

    def _call(self, what: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.fs.call(*args, json_out=True, **kwargs)
        except FileNotFoundError as exc:
            raise StoreNotFound(f"the bucket of {self.url} does not exist") from exc
        except Exception as exc:
            raise StorageError(f"{what} at {self.url} failed: {_status(exc)}") from exc

    def settings(self) -> BucketSettings:
        meta = self._call("reading the bucket's settings", "GET", "b/{}", self.bucket)
        rules = [
            r
            for r in meta.get("lifecycle", {}).get("rule", [])
            if r.get("action", {}).get("type") == "Delete"
        ]
        expiries = []
        for rule in rules:
            cond = rule.get("condition", {})
            if cond.get("daysSinceNoncurrentTime") is not None:
                expiries.append(int(cond["daysSinceNoncurrentTime"]))
            elif cond.get("isLive") is False and cond.get("age") is not None:
                expiries.append(int(cond["age"]))
        kms = meta.get("encryption", {}).get("defaultKmsKeyName")
        iam = meta.get("iamConfiguration", {})
        return BucketSettings(
            provider="gcs",
            bucket=self.bucket,
            versioning="enabled" if meta.get("versioning", {}).get("enabled") else "off",
            lifecycle_rules=len(meta.get("lifecycle", {}).get("rule", [])),
            noncurrent_expiry_days=min(expiries) if expiries else None,
            replication=str(meta.get("locationType", "")).lower()
            in ("dual-region", "multi-region"),
            object_lock=bool(meta.get("retentionPolicy")),
            encryption="customer-managed" if kms else "google-managed",
            public_access_blocked=iam.get("publicAccessPrevention") == "enforced",
        )

    def _items(self, prefix: str) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"versions": "true", "maxResults": _PAGE}
        if self.root or prefix:
            params["prefix"] = self._full(prefix)
        while True:
            page = self._call("listing the generations", "GET", "b/{}/o", self.bucket, **params)
            yield from page.get("items", [])
            token = page.get("nextPageToken")
            if not token:
                return
            params["pageToken"] = token

    def _history(self, items: list[dict[str, Any]]) -> list[ObjectVersion]:
        key = self._relative(items[0]["name"])
        items = sorted(items, key=lambda i: int(i["generation"]), reverse=True)
        out: list[ObjectVersion] = []
        newer_began: datetime | None = None
        for item in items:
            began = _time(item.get("timeCreated")) or _time(item.get("updated"))
            ended = _time(item.get("timeDeleted"))
            assert began is not None
            if ended is not None and (newer_began is None or newer_began > ended):
                # it ended and nothing replaced it then: the key was deleted at that instant
                out.append(
                    ObjectVersion(
                        key=key,
                        version=f"deleted@{item['generation']}",
                        written_at=ended,
                        deleted=True,
                        latest=newer_began is None,
                    )
                )
            out.append(
                ObjectVersion(
                    key=key,
                    version=str(item["generation"]),
                    written_at=began,
                    size_bytes=int(item.get("size") or 0),
                    etag=item.get("md5Hash") or item.get("crc32c"),
                    latest=ended is None,
                )
            )
            newer_began = began
        return out

    def versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        for _, group in groupby(self._items(prefix), key=lambda i: i["name"]):
            yield from self._history(list(group))

    def current(self, prefix: str = "") -> Iterator[ObjectVersion]:
        return (v for v in self.versions(prefix) if v.latest and not v.deleted)

    def _rewrite(
        self, fs: Any, step: PitStep, bucket: str, key: str
    ) -> Callable[[], Awaitable[Any]]:
        source = self._full(step.key)

        async def rewrite() -> None:
            extra: dict[str, Any] = {}
            while True:
                out = await fs._call(
                    "POST",
                    "b/{}/o/{}/rewriteTo/b/{}/o/{}",
                    self.bucket,
                    source,
                    bucket,
                    key,
                    headers={"Content-Type": "application/json"},
                    json_out=True,
                    sourceGeneration=step.version,
                    **extra,
                )
                if out.get("done", True) is True:
                    return
                extra = {"rewriteToken": out["rewriteToken"]}

        return rewrite

    def restore(self, steps: Sequence[PitStep]) -> dict[str, str]:
        jobs = [(s.key, self._rewrite(self.fs, s, self.bucket, self._full(s.key))) for s in steps]
        return run_all(self.fs.loop, jobs, self.transfers)

    def copy_into(self, steps: Sequence[PitStep], other: VersionedBucket) -> dict[str, str]:
        if not isinstance(other, GcsVersions):
            raise ConfigError(
                f"{other.url}: a bucket copies server-side only into a bucket of the same provider"
            )
        jobs = [
            (s.key, self._rewrite(other.fs, s, other.bucket, other._full(s.key))) for s in steps
        ]
        return run_all(other.fs.loop, jobs, self.transfers)

    def delete(self, keys: Sequence[str]) -> dict[str, str]:
        def remove(key: str) -> Callable[[], Awaitable[Any]]:
            return lambda: self.fs._call("DELETE", "b/{}/o/{}", self.bucket, self._full(key))

        return run_all(self.fs.loop, [(k, remove(k)) for k in keys], self.transfers)
