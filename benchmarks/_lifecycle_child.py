"""Child process of the lifecycle benchmark: retention planning, or garbage collection over many
blobs on the memory store, in a fresh interpreter so each measurement (and its peak memory) is
its own.

Usage: ``python _lifecycle_child.py MODE BLOBS MANIFESTS REPEAT`` with MODE one of

``retention``  ``bench_lifecycle.measure_retention(REPEAT)`` (BLOBS and MANIFESTS unused)
``list``       the floor of any collection: one bare ``list(store.list("data/"))``
``gc-dry``     ``Repository.open`` + ``collect_garbage(dry_run=True)``
``gc-delete``  ``Repository.open`` + ``collect_garbage(dry_run=False)`` (runs once)

Prints one JSON line; for the GC modes: the wall times of the runs, the process's RSS before
the first run and its high-water mark (``VmHWM``, reset just before the first run through
``/proc/self/clear_refs``) during it, and the store requests of the first run.

The store is filled directly: ``BLOBS`` keys ``data/<aa>/<id>`` with a few shared bytes each
(nothing is encrypted: GC never reads a blob), written under a fake clock two days before the
collection, except a small share written ten minutes before it (inside the grace period).
Every second blob is referenced, split over ``MANIFESTS`` real sealed manifests written with
``Repository.write_manifest`` and read back by the collection.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from _rss import reset_peak, status_kib
from gocdbackup.context import OpContext
from gocdbackup.model.backup import (
    BackupSet,
    BackupStatus,
    ChunkRef,
    Component,
    ConsistencyPoint,
    DatabaseInfo,
    Timings,
)
from gocdbackup.model.manifest import Manifest
from gocdbackup.ops.gc import collect_garbage
from gocdbackup.ports import ObjectInfo
from gocdbackup.repository import Repository
from gocdbackup.repository.repo import blob_key
from gocdbackup.testing import FakeClock, MemoryStore

PASSPHRASE = b"pw"
SCRYPT_N = 2**10
GRACE = timedelta(hours=1)
#: every RECENT_EVERY-th unreferenced blob is younger than the grace period
RECENT_EVERY = 50
BLOB_BYTES = b"\x00" * 32  # one shared object: the store's size is its keys, not its values
WRITTEN_AT = datetime(2026, 11, 18, 0, 30, tzinfo=UTC)
GC_AT = WRITTEN_AT + timedelta(days=2)


class CountingStore(MemoryStore):
    """A :class:`MemoryStore` that counts requests by kind and top-level prefix
    (``data``, ``backups``, ``locks``, ``config.json``)."""

    def __init__(self, *, clock: FakeClock) -> None:
        super().__init__("memory://bench", clock=clock)
        self.requests: Counter[str] = Counter()
        #: the keys under ``data/``, sorted once the store is filled
        self.data_keys: list[str] = []

    @staticmethod
    def _area(key: str) -> str:
        return key.split("/", 1)[0] or "(root)"

    def read(self, key: str) -> bytes:
        self.requests[f"read {self._area(key)}"] += 1
        return super().read(key)

    def write(self, key: str, data: bytes) -> None:
        self.requests[f"write {self._area(key)}"] += 1
        super().write(key, data)

    def exists(self, key: str) -> bool:
        self.requests[f"exists {self._area(key)}"] += 1
        return super().exists(key)

    def delete(self, key: str) -> None:
        self.requests[f"delete {self._area(key)}"] += 1
        super().delete(key)

    def delete_many(self, keys: Sequence[str]) -> None:
        """One request per 1,000 keys, as S3's DeleteObjects."""
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            self.requests[f"delete_many {self._area(batch[0])}"] += 1
            for key in batch:
                MemoryStore.delete(self, key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self.requests[f"list {prefix or '(all)'}"] += 1
        return super().list(prefix)

    def scan(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        self.requests[f"list {prefix or '(all)'}"] += 1  # one listing pass, streamed
        if prefix == "data/" and self.data_keys:
            return self._stream(start_after)
        return super().scan(prefix, start_after)

    def _stream(self, start_after: str) -> Iterator[ObjectInfo]:
        """``data/`` object by object from the index sorted when the store was filled, as S3
        pages a listing (MemoryStore.scan builds the whole listing first: memory that grows
        with the store and would be charged to the collection)."""
        keys = self.data_keys
        at = bisect.bisect_right(keys, start_after) if start_after else 0
        for n in range(at, len(keys)):
            key = keys[n]
            if key in self.objects:
                yield self._info(key)


def blob_ids(n: int) -> list[str]:
    return [hashlib.sha256(i.to_bytes(8, "big")).hexdigest() for i in range(n)]


def _backup(n: int, chunks: tuple[ChunkRef, ...]) -> BackupSet:
    at = WRITTEN_AT - timedelta(days=n)
    size = sum(c.size_bytes for c in chunks)
    return BackupSet(
        id=f"{at:%Y%m%dT%H%M%SZ}-{n:04d}",
        status=BackupStatus.DONE,
        point=ConsistencyPoint(
            snapshot_at=at,
            snapshot_id=f"00000003-{n:08X}-1",
            wal_lsn="0/1A2B3C4D",
            timeline=1,
            server_version="18.0",
            server_version_num=180000,
        ),
        database=DatabaseInfo(
            name="gocdnext",
            owner="gocdnext",
            encoding="UTF8",
            size_bytes=size,
            pg_dump_version="18.0",
        ),
        components=(
            Component(
                kind="postgres_dump",
                size_bytes=size,
                sha256=hashlib.sha256(str(n).encode()).hexdigest(),
                chunks=chunks,
            ),
        ),
        timings=Timings(started_at=at, finished_at=at + timedelta(minutes=5)),
    )


def build(blobs: int, manifests: int) -> tuple[CountingStore, dict[str, int]]:
    clock = FakeClock(WRITTEN_AT, step=timedelta(0))
    store = CountingStore(clock=clock)
    Repository.init(store, PASSPHRASE, now=WRITTEN_AT, scrypt_n=SCRYPT_N)
    ids = blob_ids(blobs)
    referenced = ids[0::2]
    unreferenced = ids[1::2]
    recent = unreferenced[::RECENT_EVERY]
    recent_set = set(recent)
    for blob_id in ids:
        if blob_id not in recent_set:
            store.write(blob_key(blob_id), BLOB_BYTES)
    clock.advance(GC_AT - WRITTEN_AT - timedelta(minutes=10))
    for blob_id in recent:
        store.write(blob_key(blob_id), BLOB_BYTES)
    store.data_keys = sorted(k for k in store.objects if k.startswith("data/"))
    repo = Repository.open(store, PASSPHRASE)
    for m in range(manifests):
        chunks = tuple(ChunkRef(blob_id=b, size_bytes=4096) for b in referenced[m::manifests])
        repo.write_manifest(Manifest(backup=_backup(m, chunks)))
    expected = {
        "blobs": blobs,
        "referenced": len(referenced),
        "to_delete": len(unreferenced) - len(recent),
        "too_recent": len(recent),
        "manifests": manifests,
    }
    return store, expected


def _gc(store: CountingStore, *, dry_run: bool) -> dict[str, Any]:
    repo = Repository.open(store, PASSPHRASE)
    ctx = OpContext(clock=FakeClock(GC_AT, step=timedelta(0)))
    result = collect_garbage(repo, ctx=ctx, grace=GRACE, dry_run=dry_run)
    return {**result.plan.summary(), "deleted": result.deleted}


def main(mode: str, blobs: int, manifests: int, repeat: int) -> None:
    if mode == "retention":
        import bench_lifecycle  # noqa: PLC0415  (only this mode needs it)

        print(json.dumps(bench_lifecycle.measure_retention(repeat)))
        return
    if mode not in ("list", "gc-dry", "gc-delete"):
        raise SystemExit(f"unknown mode {mode!r}")
    start = time.perf_counter()
    store, expected = build(blobs, manifests)
    build_seconds = time.perf_counter() - start
    runs = 1 if mode == "gc-delete" else repeat
    seconds: list[float] = []
    requests: dict[str, int] = {}
    outcome: dict[str, Any] = {}
    rss_before = peak = 0
    reset = False
    for n in range(runs):
        store.requests.clear()
        if n == 0:
            reset = reset_peak()
            rss_before = status_kib("VmRSS")
        t0 = time.perf_counter()
        if mode == "list":
            listed = list(store.list("data/"))
            outcome = {"listed": len(listed)}
            del listed
        else:
            outcome = _gc(store, dry_run=mode == "gc-dry")
        seconds.append(time.perf_counter() - t0)
        if n == 0:
            peak = status_kib("VmHWM")
            requests = dict(store.requests)
    print(
        json.dumps(
            {
                "mode": mode,
                "build_seconds": build_seconds,
                "seconds": seconds,
                "rss_before_kib": rss_before,
                "peak_kib": peak,
                "peak_is_run_only": reset,
                "requests": requests,
                "outcome": outcome,
                "expected": expected,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
