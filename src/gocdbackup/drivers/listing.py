"""Listing an fsspec store in key order, page by page: S3's ``list_objects_v2`` and
``list_object_versions``, GCS's JSON ``objects.list``, and a sorted walk of a local directory;
and reading the metadata listings report (write time, version).

The pagers do no error handling of their own: each request goes through the ``page`` function
the store gives them (retried and translated there), and the walk's filesystem calls through
its ``translated`` context."""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import partial
from typing import Any

from gocdbackup.ports import ObjectInfo

#: keys per listing request (the S3 and GCS maximum)
_SCAN_PAGE = 1000

#: one listing request, retried and translated by the store: ``page(what, fetch)`` is
#: ``fetch()``, or None where the bucket does not exist
Page = Callable[[str, Callable[[], Any]], Any]
#: pages of infos keyed by the full object name, for (bucket, listing prefix, start key)
Pages = Callable[[str, str, str], Iterator[builtins.list[ObjectInfo]]]
#: the store's translation of vendor and OS errors, for (what, key)
Translated = Callable[[str, str], AbstractContextManager[None]]

TEMP_PREFIX = ".gocdbackup-tmp-"


def is_temp(key: str) -> bool:
    """Whether ``key`` is one of this library's temporary files (a write in progress)."""
    return key.rsplit("/", 1)[-1].startswith(TEMP_PREFIX)


def relative(path: str, base: str) -> str:
    """``path`` relative to the store's root ``base`` (leading slashes ignored)."""
    p = path.lstrip("/")
    b = base.lstrip("/")
    if b and p.startswith(b + "/"):
        return p[len(b) + 1 :]
    return p if not b else p.removeprefix(b).lstrip("/")


def version_of(info: dict[str, Any]) -> str | None:
    """The object version in an fsspec ``info`` dict: ``VersionId`` (version-aware S3 on a
    versioned bucket; ``"null"`` means unversioned), ``generation`` (GCS)."""
    for field in ("VersionId", "generation"):
        value = info.get(field)
        if value not in (None, "", "null"):
            return str(value)
    return None


def modified_at(info: dict[str, Any]) -> datetime | None:
    """The last-write time in an fsspec ``info`` dict: ``mtime`` (local files, epoch seconds),
    ``LastModified`` (S3), ``updated`` (GCS, RFC 3339), ``created`` (fsspec memory)."""
    for field in ("LastModified", "mtime", "updated", "created"):
        value = info.get(field)
        if value is None:
            continue
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


# -- object stores ----------------------------------------------------------------------------


def under_root(pages: Pages, root: str, prefix: str, start_after: str) -> Iterator[ObjectInfo]:
    """The entries of ``pages`` relative to the store's ``root`` (``bucket/base``), filtered
    again client-side: under ``prefix``, after ``start_after``, no "folder" marker objects
    (keys ending with ``/``), no temporary files."""
    bucket, _, base = root.partition("/")
    base = f"{base}/" if base else ""
    start = base + start_after if start_after else ""
    for page in pages(bucket, base + prefix, start):
        for info in page:
            key = info.key[len(base) :]
            if (
                not key
                or key.endswith("/")  # a "folder" marker is not an object
                or not key.startswith(prefix)
                or key <= start_after
                or is_temp(key)
            ):
                continue
            yield ObjectInfo(
                key=key,
                size_bytes=info.size_bytes,
                modified_at=info.modified_at,
                version=info.version,
            )


def s3_pages(
    fs: Any, bucket: str, prefix: str, start: str, *, versions: bool, page: Page
) -> Iterator[builtins.list[ObjectInfo]]:
    """``list_objects_v2`` pages or, with ``versions`` (a version-aware filesystem), the latest
    versions from ``list_object_versions`` pages."""
    method = "list_object_versions" if versions else "list_objects_v2"
    params: dict[str, Any] = {"Bucket": bucket, "MaxKeys": _SCAN_PAGE}
    if prefix:
        params["Prefix"] = prefix
    if start:
        params["KeyMarker" if versions else "StartAfter"] = start
    while True:
        found = page(prefix, partial(fs.call_s3, method, **params))
        if found is None:
            return
        entries = found.get("Versions", []) if versions else found.get("Contents", [])
        yield [
            ObjectInfo(
                key=entry["Key"],
                size_bytes=int(entry.get("Size") or 0),
                modified_at=modified_at(entry),
                version=version_of(entry) if versions else None,
            )
            for entry in entries
            if not versions or entry.get("IsLatest")
        ]
        if not found.get("IsTruncated"):
            return
        if versions:
            params["KeyMarker"] = found.get("NextKeyMarker")
            params["VersionIdMarker"] = found.get("NextVersionIdMarker")
            if not params["KeyMarker"]:
                return
        else:
            token = found.get("NextContinuationToken")
            if not token:
                return
            params.pop("StartAfter", None)
            params["ContinuationToken"] = token


def gcs_pages(
    fs: Any, bucket: str, prefix: str, start: str, *, page: Page
) -> Iterator[builtins.list[ObjectInfo]]:
    """Pages of the JSON API's ``objects.list`` (``startOffset`` is inclusive: the cursor
    itself is dropped by :func:`under_root`'s filter)."""
    params: dict[str, Any] = {
        "prefix": prefix or None,
        "startOffset": start or None,
        "maxResults": _SCAN_PAGE,
    }
    while True:
        found = page(prefix, partial(fs.call, "GET", "b/{}/o", bucket, json_out=True, **params))
        if found is None:
            return
        yield [
            ObjectInfo(
                key=item["name"],
                size_bytes=int(item.get("size") or 0),
                modified_at=modified_at(item),
                version=version_of(item),
            )
            for item in found.get("items", [])
        ]
        token = found.get("nextPageToken")
        if not token:
            return
        params["pageToken"] = token


# -- local files ------------------------------------------------------------------------------


def walk_local(
    root: str, prefix: str, start_after: str, *, translated: Translated
) -> Iterator[ObjectInfo]:
    """A depth-first walk where each directory's entries are sorted by ``name/`` (a
    directory) or ``name`` (a file): the keys come out in ``str`` order ("a-b" < "a/b" <
    "a0"); directories that cannot hold a wanted key are not entered."""
    stack = [_local_entries(root or "/", "", translated)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        key, dirent, is_dir = entry
        if is_dir:
            if _may_hold(key, prefix, start_after):
                stack.append(_local_entries(dirent.path, key, translated))
            continue
        if not key.startswith(prefix) or key <= start_after or is_temp(key):
            continue
        with translated("list", key):
            try:
                st = dirent.stat()
            except FileNotFoundError:  # deleted since the directory was read
                continue
        yield ObjectInfo(
            key=key,
            size_bytes=st.st_size,
            modified_at=datetime.fromtimestamp(st.st_mtime, UTC),
        )


def _local_entries(
    directory: str, rel: str, translated: Translated
) -> Iterator[tuple[str, os.DirEntry[str], bool]]:
    """``(key, entry, is a directory)`` of one directory, sorted (``key`` ends with ``/``
    for a directory); nothing if it is gone."""
    with translated("list", rel or "/"):
        try:
            with os.scandir(directory) as it:
                found = []
                for dirent in it:
                    is_dir = dirent.is_dir()
                    found.append((rel + dirent.name + ("/" if is_dir else ""), dirent, is_dir))
        except (FileNotFoundError, NotADirectoryError):
            return iter(())
    found.sort(key=lambda e: e[0])
    return iter(found)


def _may_hold(directory: str, prefix: str, start_after: str) -> bool:
    """Whether the "directory" ``directory`` (a key prefix ending with ``/``) can hold a key
    that starts with ``prefix`` and sorts after ``start_after``: every key below it does if
    ``start_after`` lies inside it; none does if it sorts wholly before ``start_after``."""
    if not (directory.startswith(prefix) or prefix.startswith(directory)):
        return False
    return start_after.startswith(directory) or directory > start_after
