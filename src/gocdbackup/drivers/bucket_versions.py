""":class:`~gocdbackup.ports_bucket.VersionedBucket` over S3 (AWS, MinIO, any endpoint), and
:func:`open_versioned` for any artefact-store URL (GCS in
:mod:`gocdbackup.drivers.gcs_versions`; a filesystem store has no versions).

Every operation is server-side: a restore is a ``CopyObject`` of the old version onto its key
(``UploadPartCopy`` above 5 GiB), a delete is one ``DeleteObjects`` per 1,000 keys.  Errors
are told apart by the service's error code, never by their text."""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from gocdbackup.drivers.bucket_common import BucketRoot, error_code, run_all
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.gcs_versions import GcsVersions
from gocdbackup.drivers.listing import modified_at
from gocdbackup.errors import ConfigError, StorageError, StoreNotFound, VersioningOff
from gocdbackup.model.bucket_versions import ObjectVersion, PitStep
from gocdbackup.model.store_audit import BucketSettings
from gocdbackup.ports_bucket import VersionedBucket

_PAGE = 1000
_COPY_LIMIT = 5 * 2**30  # CopyObject's limit; above it the copy goes part by part
_MISSING_BUCKET = {"NoSuchBucket", "404"}


class S3Versions(BucketRoot):
    """One S3 bucket (or a prefix in it) and its versions."""

    def __init__(self, store: FsspecStore, *, transfers: int = 32) -> None:
        super().__init__(store, transfers=transfers)

    def _get(self, method: str) -> tuple[dict[str, Any] | None, str]:
        """``method``'s answer, or None and the error code."""
        try:
            return self.fs.call_s3(method, Bucket=self.bucket), ""
        except Exception as exc:
            code = error_code(exc)
            if code in _MISSING_BUCKET:
                raise StoreNotFound(f"the bucket of {self.url} does not exist") from exc
            return None, code

    def settings(self) -> BucketSettings:
        unreadable: list[tuple[str, str]] = []
        absent = {
            "NoSuchLifecycleConfiguration",
            "ReplicationConfigurationNotFoundError",
            "ObjectLockConfigurationNotFoundError",
            "ServerSideEncryptionConfigurationNotFoundError",
            "NoSuchPublicAccessBlockConfiguration",
        }

        def read(check: str, method: str) -> dict[str, Any] | None:
            got, code = self._get(method)
            if got is None and code not in absent:
                unreadable.append((check, code))
            return got

        versioning = read("versioning", "get_bucket_versioning")
        lifecycle = read("lifecycle", "get_bucket_lifecycle_configuration")
        replication = read("replication", "get_bucket_replication")
        lock = read("object_lock", "get_object_lock_configuration")
        encryption = read("encryption", "get_bucket_encryption")
        public = read("public_access", "get_public_access_block")
        failed = dict(unreadable)
        rules = [r for r in (lifecycle or {}).get("Rules", []) if r.get("Status") == "Enabled"]
        expiries = [
            int(r["NoncurrentVersionExpiration"]["NoncurrentDays"])
            for r in rules
            if r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") is not None
        ]
        algorithm = None
        for rule in (
            (encryption or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        ):
            algorithm = rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
        block = (public or {}).get("PublicAccessBlockConfiguration", {})
        flags = (
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        )
        return BucketSettings(
            provider="s3",
            bucket=self.bucket,
            versioning=None
            if "versioning" in failed
            else {"Enabled": "enabled", "Suspended": "suspended"}.get(
                (versioning or {}).get("Status", ""), "off"
            ),
            lifecycle_rules=None if "lifecycle" in failed else len(rules),
            noncurrent_expiry_days=min(expiries) if expiries else None,
            replication=None if "replication" in failed else replication is not None,
            object_lock=None
            if "object_lock" in failed
            else (lock or {}).get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
            == "Enabled",
            encryption=algorithm,
            public_access_blocked=None
            if "public_access" in failed
            else all(block.get(f) for f in flags),
            unreadable=tuple(unreadable),
        )

    def _pages(self, prefix: str) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"Bucket": self.bucket, "MaxKeys": _PAGE}
        if self.root or prefix:
            params["Prefix"] = self._full(prefix)
        while True:
            try:
                page: dict[str, Any] = self.fs.call_s3("list_object_versions", **params)
            except Exception as exc:
                if error_code(exc) in _MISSING_BUCKET:
                    raise StoreNotFound(f"the bucket of {self.url} does not exist") from exc
                raise StorageError(
                    f"listing the versions in {self.url} failed: {error_code(exc)}"
                ) from exc
            yield page
            if not page.get("IsTruncated") or not page.get("NextKeyMarker"):
                return
            params["KeyMarker"] = page["NextKeyMarker"]
            params["VersionIdMarker"] = page.get("NextVersionIdMarker", "")

    def _version(self, entry: dict[str, Any], *, deleted: bool) -> ObjectVersion:
        when = modified_at(entry)
        assert isinstance(when, datetime)
        return ObjectVersion(
            key=self._relative(entry["Key"]),
            version=str(entry.get("VersionId") or "null"),
            written_at=when,
            size_bytes=int(entry.get("Size") or 0),
            etag=entry.get("ETag"),
            deleted=deleted,
            latest=bool(entry.get("IsLatest")),
        )

    def versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        for page in self._pages(prefix):
            kept = (self._version(e, deleted=False) for e in page.get("Versions", []))
            markers = (self._version(e, deleted=True) for e in page.get("DeleteMarkers", []))
            yield from heapq.merge(kept, markers, key=lambda v: v.key)

    def current(self, prefix: str = "") -> Iterator[ObjectVersion]:
        return (v for v in self.versions(prefix) if v.latest and not v.deleted)

    def _copy(self, fs: Any, step: PitStep, bucket: str, key: str) -> Callable[[], Awaitable[Any]]:
        source = {"Bucket": self.bucket, "Key": self._full(step.key), "VersionId": step.version}
        if step.size_bytes < _COPY_LIMIT:
            return lambda: fs._call_s3("copy_object", Bucket=bucket, Key=key, CopySource=source)
        path = f"{self.bucket}/{self._full(step.key)}?versionId={step.version}"
        return lambda: fs._cp_file(path, f"{bucket}/{key}", preserve_etag=True)

    def restore(self, steps: Sequence[PitStep]) -> dict[str, str]:
        jobs = [(s.key, self._copy(self.fs, s, self.bucket, self._full(s.key))) for s in steps]
        return run_all(self.fs.loop, jobs, self.transfers)

    def copy_into(self, steps: Sequence[PitStep], other: VersionedBucket) -> dict[str, str]:
        if not isinstance(other, S3Versions):
            raise ConfigError(
                f"{other.url}: a bucket copies server-side only into a bucket of the same provider"
            )
        jobs = [(s.key, self._copy(other.fs, s, other.bucket, other._full(s.key))) for s in steps]
        return run_all(other.fs.loop, jobs, self.transfers)

    def delete(self, keys: Sequence[str]) -> dict[str, str]:
        failed: dict[str, str] = {}
        for start in range(0, len(keys), _PAGE):
            batch = keys[start : start + _PAGE]
            objects = [{"Key": self._full(k)} for k in batch]
            try:
                answer = self.fs.call_s3(
                    "delete_objects", Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                )
            except Exception as exc:
                failed.update(dict.fromkeys(batch, error_code(exc)))
                continue
            for error in answer.get("Errors", []):
                failed[self._relative(error["Key"])] = str(error.get("Code", "error"))
        return failed


class FilesystemVersions:
    """A filesystem store: it has settings to audit, and no versions."""

    def __init__(self, store: FsspecStore) -> None:
        self._store = store

    @property
    def url(self) -> str:
        return self._store.url

    def settings(self) -> BucketSettings:
        return BucketSettings(provider="file", bucket=self._store.root, versioning="off")

    def _refuse(self) -> VersioningOff:
        return VersioningOff(
            f"{self.url} is a filesystem store: it keeps no versions to roll back to (restore "
            "its volume from a snapshot instead, or artefacts from a backup)"
        )

    def versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        raise self._refuse()

    def current(self, prefix: str = "") -> Iterator[ObjectVersion]:
        raise self._refuse()

    def restore(self, steps: Sequence[PitStep]) -> dict[str, str]:
        raise self._refuse()

    def delete(self, keys: Sequence[str]) -> dict[str, str]:
        raise self._refuse()

    def copy_into(self, steps: Sequence[PitStep], other: VersionedBucket) -> dict[str, str]:
        raise self._refuse()


def bucket_versioned(store: FsspecStore) -> bool:
    """Whether an S3 store's bucket has versioning enabled (one request; False when it cannot
    be told, e.g. access denied: the backup then records no version ids, as before)."""
    if "s3" not in store.protocols:
        return False
    bucket = store.root.partition("/")[0]
    try:
        answer = store.fs.call_s3("get_bucket_versioning", Bucket=bucket)
    except Exception:
        return False
    return bool(answer.get("Status") == "Enabled")


def open_versioned(
    url: str, storage_options: dict[str, Any] | None = None, *, transfers: int = 32
) -> VersionedBucket:
    """The bucket behind an artefact-store URL, with its history."""
    options = dict(storage_options or {})
    if url.startswith(("s3://", "s3a://")):
        options["version_aware"] = True
        # botocore's pool holds 10 connections: as many as copies in flight, or they queue
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("max_pool_connections", max(transfers, 10))
        options["config_kwargs"] = config
    store = FsspecStore(url, options)
    if "s3" in store.protocols:
        return S3Versions(store, transfers=transfers)
    if "gs" in store.protocols or "gcs" in store.protocols:
        return GcsVersions(store, transfers=transfers)
    if store.local:
        return FilesystemVersions(store)
    raise ConfigError(f"{store.url}: this kind of store has no versions to audit or roll back")
