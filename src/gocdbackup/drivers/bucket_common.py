"""What the S3 and GCS bucket drivers share: a bucket (or a prefix in it) of a store, running
many server-side requests at once on the filesystem's event loop, and the service's error
code behind an exception."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import fsspec.asyn

from gocdbackup.drivers.fsspec_store import FsspecStore


def error_code(exc: BaseException) -> str:
    """The service's error code behind ``exc`` (botocore keeps it in ``response``), or the
    exception's type name."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        status = getattr(seen, "code", None)  # gcsfs's HttpError: the HTTP status
        if isinstance(status, int):
            return str(status)
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__


def run_all(
    loop: Any, jobs: Sequence[tuple[str, Callable[[], Awaitable[Any]]]], width: int
) -> dict[str, str]:
    """Run ``jobs`` (key, coroutine factory) ``width`` at a time on the filesystem's loop;
    the keys that failed, with their error code."""

    async def everything() -> dict[str, str]:
        gate = asyncio.Semaphore(width)
        failed: dict[str, str] = {}

        async def one(key: str, make: Callable[[], Awaitable[Any]]) -> None:
            async with gate:
                try:
                    await make()
                except Exception as exc:
                    failed[key] = error_code(exc)

        await asyncio.gather(*(one(k, m) for k, m in jobs))
        return failed

    result: dict[str, str] = fsspec.asyn.sync(loop, everything)
    return result


class BucketRoot:
    """One bucket (or a prefix in it) of a store: keys relative to the store's root."""

    def __init__(self, store: FsspecStore, *, transfers: int) -> None:
        self._store = store
        self.fs = store.fs
        self.bucket, _, self.root = store.root.partition("/")
        self.transfers = transfers

    @property
    def url(self) -> str:
        return self._store.url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _full(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def _relative(self, key: str) -> str:
        return key[len(self.root) + 1 :] if self.root else key
