"""ObjectStore over any fsspec URL (``file://``, ``s3://``, ``gs://``, ``memory://``, …).

Listing in key order (the per-backend pagers) is in :mod:`gocdbackup.drivers.listing`; what
differs between backends (URL credentials, retryable errors, S3's session) in
:mod:`gocdbackup.drivers.fsspec_backends`."""

from __future__ import annotations

import builtins
import errno
import io
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import fsspec
import stamina

from gocdbackup.drivers import bulk_delete, listing
from gocdbackup.drivers.fsspec_backends import (
    atomic_write,
    atomic_write_stream,
    credentials_from_url,
    is_transient,
    lighter_s3_session,
    protocols,
    redact_url,
)
from gocdbackup.drivers.listing import is_temp, modified_at, relative, version_of
from gocdbackup.drivers.store_reader import TranslatingReader
from gocdbackup.errors import (
    ConfigError,
    GocdBackupError,
    ObjectMissing,
    StorageError,
    TransientStorageError,
)
from gocdbackup.model.keys import check_object_key
from gocdbackup.ports import ObjectInfo, read_each
from gocdbackup.ports_store import delete_each

log = logging.getLogger("gocdbackup.drivers.store")

_STREAM_BLOCK = 8 * 1024 * 1024

T = TypeVar("T")


class FsspecStore:
    """A key → bytes store rooted at ``url``.  Credentials come from ``storage_options`` or the
    backend's usual places (AWS env/profiles, GCS application default credentials); they are
    never logged or shown."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        if not url or not url.strip():
            raise ConfigError("a repository URL is required (repo=URL or GOCDBACKUP_REPO)")
        self._url = redact_url(url)
        fs_url, options, userinfo = credentials_from_url(url, storage_options)
        self._args = (fs_url, options)  # what a pickled copy is rebuilt from
        try:
            self.fs, root = fsspec.core.url_to_fs(fs_url, **options)
        except (ValueError, ImportError) as exc:
            raise ConfigError(f"cannot use storage URL {self._url}: {exc}") from exc
        if userinfo and userinfo in root:
            # the backend did not consume the credentials: they would end up in every path
            raise ConfigError(
                f"{self._url}: credentials in a {self.fs.protocol!r} URL are not supported; "
                "pass them as storage options or through the backend's usual configuration"
            )
        self.root = root.rstrip("/")
        self.protocols = protocols(self.fs)
        self.local = "file" in self.protocols
        #: only a version-aware S3 filesystem reads a given version (see :meth:`_versioned`)
        self.pins_versions = "s3" in self.protocols and bool(
            getattr(self.fs, "version_aware", False)
        )
        if "s3" in self.protocols:
            lighter_s3_session(self.fs)

    @property
    def url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"FsspecStore({self._url!r})"

    def __reduce__(self) -> tuple[Any, tuple[str, dict[str, Any]]]:
        """Pickled (for a worker process) as its URL and options, never its connections."""
        return (type(self), self._args)

    def _path(self, key: str) -> str:
        check_object_key(key)
        return f"{self.root}/{key}" if self.root else key

    def _call(self, what: str, key: str, fn: Callable[[], T]) -> T:
        for attempt in stamina.retry_context(on=TransientStorageError, attempts=5, timeout=60):
            with attempt, self._translated(what, key):
                return fn()
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _translated(self, what: str, key: str) -> Iterator[None]:
        """Vendor and OS errors as gocdbackup errors (no retry: streams cannot be replayed)."""
        try:
            yield
        except GocdBackupError:
            raise
        except FileNotFoundError as exc:
            if what == "write":
                # the key cannot be missing on a write: the bucket or directory is
                raise StorageError(
                    f"write {key!r} at {self._url}: the bucket or directory does not exist"
                ) from exc
            raise ObjectMissing(key) from exc
        except IsADirectoryError as exc:
            if what == "read":  # a "directory" is not an object, as on object stores
                raise ObjectMissing(key) from exc
            raise StorageError(f"{what} {key!r} at {self._url} failed: {exc}") from exc
        except PermissionError as exc:
            raise StorageError(f"{what} {key!r} at {self._url}: access denied") from exc
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StorageError(f"{what} {key!r} at {self._url}: no space left") from exc
            if is_transient(exc, paths=(self.root, key)):
                raise TransientStorageError(f"{what} {key!r} at {self._url}: {exc}") from exc
            raise StorageError(f"{what} {key!r} at {self._url} failed: {exc}") from exc
        except Exception as exc:  # vendor errors never escape the driver
            if is_transient(exc, paths=(self.root, key)):
                raise TransientStorageError(f"{what} {key!r} at {self._url}: {exc}") from exc
            raise StorageError(f"{what} {key!r} at {self._url} failed: {exc}") from exc

    @contextmanager
    def open_read(
        self, key: str, size_hint: int | None = None, version: str | None = None
    ) -> Iterator[TranslatingReader]:
        path, pinned = self._versioned(self._path(key), version)
        with self._translated("read", key):
            if self.local:
                raw: Any = open(path, "rb")  # noqa: SIM115 - closed below, after the yield
            elif size_hint is not None and size_hint <= _STREAM_BLOCK:
                # a small object in one request (no open/stat round trip first)
                raw = io.BytesIO(self.fs.cat_file(path, **pinned))
            else:
                extra: dict[str, Any] = {} if size_hint is None else {"size": size_hint}
                raw = self.fs.open(path, "rb", block_size=_STREAM_BLOCK, **extra, **pinned)
        try:
            yield TranslatingReader(raw, self._translated, key)
        finally:
            with suppress(Exception):
                raw.close()

    def _versioned(self, path: str, version: str | None) -> tuple[str, dict[str, Any]]:
        """How to ask this filesystem for ``version`` of ``path``.  Only a version-aware S3
        filesystem pins it (a VersionId other than "null" means the bucket keeps old
        versions); a GCS generation is recorded but not pinned, since a bucket without
        Object Versioning drops the old generation on overwrite."""
        if version is None or not self.pins_versions:
            return path, {}
        return path, {"version_id": version}

    def read_many(self, wanted: Sequence[tuple[str, str | None]]) -> dict[str, bytes]:
        wanted = list(dict(wanted).items())  # each key once
        paths = {self._path(key): key for key, _ in wanted}
        if (
            self.local
            or len(wanted) < 2
            or (self.pins_versions and any(v is not None for _, v in wanted))
            or any(c in p for p in paths for c in "*?[")  # fs.cat would expand them as globs
        ):
            return read_each(self, wanted)
        extra: dict[str, Any] = {}
        if "s3" in self.protocols:
            extra["max_concurrency"] = 1  # no HEAD before each GET: these are small
        got = self._call(
            "read",
            wanted[0][0],
            lambda: self.fs.cat(list(paths), on_error="return", batch_size=len(paths), **extra),
        )
        out: dict[str, bytes] = {}
        retry: list[tuple[str, str | None]] = []
        versions = dict(wanted)
        for path, data in got.items():
            key = paths.get(path) or paths.get(path.lstrip("/")) or relative(path, self.root)
            if isinstance(data, bytes | bytearray):
                out[key] = bytes(data)
            elif not isinstance(data, FileNotFoundError):
                retry.append((key, versions.get(key)))  # read alone, with the usual retries
        out.update(read_each(self, retry))
        return out

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        with self._translated("write", key):
            if self.local:
                return atomic_write_stream(Path(path), chunks)
            return self._remote_write_stream(path, chunks)

    def _remote_write_stream(self, path: str, chunks: Iterable[bytes]) -> int:
        # object stores publish an object (a multipart upload) only when it is complete
        f = self.fs.open(path, "wb", block_size=_STREAM_BLOCK)
        written = 0
        try:
            for data in chunks:
                f.write(data)
                written += len(data)
        except BaseException:
            discard = getattr(f, "discard", None)
            if discard is not None:
                discard()
            raise
        f.close()
        return written

    def read(self, key: str) -> bytes:
        path = self._path(key)
        if self.local:
            return self._call("read", key, lambda: Path(path).read_bytes())
        return self._call("read", key, lambda: bytes(self.fs.cat_file(path)))

    def write(self, key: str, data: bytes) -> None:
        self._write(key, data)

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if self.local:
            self._call("write", key, lambda: atomic_write(Path(path), data))
        else:
            self._call("write", key, lambda: self.fs.pipe_file(path, data))

    def exists(self, key: str) -> bool:
        path = self._path(key)

        def check() -> bool:
            # not fs.isfile: it answers False for ANY error, a 503 or a reset connection too
            try:
                info = self.fs.info(path)
            except (FileNotFoundError, NotADirectoryError):
                return False
            # a "directory" (a prefix of other keys) is not an object
            return bool(info.get("type") == "file")

        return self._call("check", key, check)

    def location_exists(self) -> bool:
        """The directory of a local store, the bucket of an object store (a prefix inside a
        bucket always "exists": object stores have no directories); in-memory stores always."""
        bucket = self.root.partition("/")[0]

        def look() -> bool:
            if self.local:
                return os.path.isdir(self.root or "/")
            if "memory" in self.protocols or not bucket:
                return True
            return bool(self.fs.exists(bucket))

        return self._call("stat", "/", look)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self.root
        return iter(self._call("list", prefix or "/", lambda: self._list(base, prefix)))

    def _list(self, base: str, prefix: str) -> builtins.list[ObjectInfo]:
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = f"{base}/{directory}" if directory else base
        # not fs.exists() first: for a bare bucket s3fs answers False on ANY error (a 503 too),
        # and the listing would silently be empty
        try:
            found = self.fs.find(start, detail=True)
        except FileNotFoundError:
            return []
        out = []
        for path, info in found.items():
            key = relative(path, base)
            if key.startswith(prefix) and not is_temp(key):
                out.append(
                    ObjectInfo(
                        key=key,
                        size_bytes=int(info.get("size") or 0),
                        modified_at=modified_at(info),
                        version=version_of(info),
                    )
                )
        out.sort(key=lambda o: o.key)
        return out

    def scan(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` after ``start_after``, in key order, page by page: S3 and
        GCS through their listing APIs (one page of up to 1000 keys in memory at a time),
        local files by a lazy sorted directory walk; any other filesystem (fsspec ``memory``)
        from one sorted listing.  Hides only this library's temporary files (and, on object
        stores, "folder" marker objects whose key ends with ``/``).  The pagers are in
        :mod:`gocdbackup.drivers.listing`."""
        protocols = self.protocols
        bucket = self.root.partition("/")[0]
        if self.local:
            return listing.walk_local(self.root, prefix, start_after, translated=self._translated)
        if bucket and "s3" in protocols and hasattr(self.fs, "call_s3"):
            pages: listing.Pages = partial(
                listing.s3_pages, self.fs, versions=self.pins_versions, page=self._page
            )
            return listing.under_root(pages, self.root, prefix, start_after)
        if bucket and ("gs" in protocols or "gcs" in protocols) and hasattr(self.fs, "call"):
            pages = partial(listing.gcs_pages, self.fs, page=self._page)
            return listing.under_root(pages, self.root, prefix, start_after)
        return self._scan_listed(prefix, start_after)

    def _page(self, what: str, fetch: Callable[[], T]) -> T | None:
        """One listing request, retried and translated; None if the bucket does not exist."""

        def call() -> T | None:
            try:
                return fetch()
            except FileNotFoundError:
                return None

        return self._call("list", what or "/", call)

    def _scan_listed(self, prefix: str, start_after: str) -> Iterator[ObjectInfo]:
        """Any other filesystem: one sorted listing, filtered (no paging API to stream)."""
        base = self.root
        found = self._call("list", prefix or "/", lambda: self._list(base, prefix))
        return (info for info in found if info.key > start_after)

    def stat(self, key: str) -> ObjectInfo | None:
        """A fresh look at ``key`` (no listing cache): S3 ``head_object``, a GCS object
        ``GET``, ``fs.info`` elsewhere; None if it is missing or is a "directory" (a "folder"
        marker object, whose key ends with ``/``, too: :meth:`scan` does not report those)."""
        path = self._path(key)
        if key.endswith("/"):
            return None
        protocols = self.protocols
        bucket, _, name = path.partition("/")
        if bucket and name and "s3" in protocols and hasattr(self.fs, "call_s3"):
            fetch: Callable[[], dict[str, Any]] = partial(
                self.fs.call_s3, "head_object", Bucket=bucket, Key=name
            )
        elif bucket and name and ("gs" in protocols or "gcs" in protocols):
            fetch = partial(self.fs.call, "GET", "b/{}/o/{}", bucket, name, json_out=True)
        else:
            fetch = partial(self.fs.info, path)

        def look() -> ObjectInfo | None:
            try:
                info = fetch()
            except (FileNotFoundError, NotADirectoryError):
                return None
            if info.get("type", "file") != "file":
                return None  # a "directory" (a prefix of other keys) is not an object
            versions = "s3" not in protocols or self.pins_versions
            return ObjectInfo(
                key=key,
                size_bytes=int(info.get("size", info.get("ContentLength")) or 0),
                modified_at=modified_at(info),
                version=version_of(info) if versions else None,
            )

        return self._call("stat", key, look)

    def delete(self, key: str) -> None:
        path = self._path(key)

        def rm() -> None:
            try:
                self.fs.rm_file(path)
            except (FileNotFoundError, IsADirectoryError):
                return  # a missing key, or a "directory" that is no object: nothing to delete

        self._call("delete", key, rm)

    def delete_many(self, keys: Sequence[str]) -> None:
        paths = [self._path(key) for key in keys]
        if "s3" in self.protocols:
            batch, delete = bulk_delete.S3_BATCH, bulk_delete.s3
        elif "gs" in self.protocols or "gcs" in self.protocols:
            batch, delete = bulk_delete.GCS_BATCH, bulk_delete.gcs
        else:
            delete_each(self, keys)
            return
        for start in range(0, len(paths), batch):
            part = paths[start : start + batch]
            failed = self._call("delete", keys[start], partial(delete, self.fs, part))
            if failed:
                first, why = next(iter(failed.items()))
                raise StorageError(
                    f"delete at {self._url}: {len(failed)} object(s) could not be deleted, "
                    f"e.g. {relative(first, self.root)!r} ({why})"
                )
