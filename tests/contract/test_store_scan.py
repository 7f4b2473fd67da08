"""``ObjectStore.scan`` and ``ObjectStore.stat`` on every backend (see conftest.py).

``scan`` is what an orphan reconciliation merges against the database's sorted keys, so its
order must be Python ``str`` order (UTF-8 byte order) exactly, its cursor must resume exactly
after the last key seen, and it must stream: S3 and GCS page by page, local files by a lazy
sorted walk.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import stamina

from gocdbackup.drivers import listing
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.errors import ConfigError, StorageError
from gocdbackup.ports import ObjectInfo, ObjectStore
from gocdbackup.testing import MemoryStore

from .conftest import (
    GCS_OPTIONS,
    S3_KEY,
    S3_SECRET,
    Backend,
    EmulatorGcsStore,
    Server,
    unique_bucket,
)

#: a key of 900 characters in nested "directories" (S3 and GCS allow 1024 bytes)
LONG_KEY = "deep/" + "/".join(f"{i:02d}" + "d" * 38 for i in range(21)) + "/" + "f" * 34
assert len(LONG_KEY) == 900

#: keys whose order a naive directory walk gets wrong: "a-b" < "a.b" < "a/..." < "a0"
TRICKY = {
    "a-b": b"1",
    "a.b": b"22",
    "a/b": b"333",
    "a/b-c": b"",
    "a/b.d/c": b"4444",
    "a/bb/c": b"55555",
    "a0": b"6",
    "A": b"7",
    "e/x": b"8",
    "é/ü": b"9",
    "ü": b"10",
    "\U0001f600/smile": b"11",
    "z z/a b": b"12",
    "x.part": b"partial",
    "d/obj.part": b"partial too",
    LONG_KEY: b"long",
}
SORTED = sorted(TRICKY)
PREFIXES = [
    ("a/", ["a/b", "a/b-c", "a/b.d/c", "a/bb/c"]),
    ("a", ["a-b", "a.b", "a/b", "a/b-c", "a/b.d/c", "a/bb/c", "a0"]),
    ("a/b", ["a/b", "a/b-c", "a/b.d/c", "a/bb/c"]),
    ("a/b.", ["a/b.d/c"]),
    ("a/b.d/", ["a/b.d/c"]),
    ("a/b.d/c", ["a/b.d/c"]),
    ("é", ["é/ü"]),
    ("z z/", ["z z/a b"]),
    ("deep/00", [LONG_KEY]),
    (LONG_KEY, [LONG_KEY]),
    (LONG_KEY + "x", []),
    ("nothing", []),
    ("a/nothing/", []),
]
#: cursors that are no key: before, between and inside the "directories"
CURSORS = ["0", "a", "a/", "a/b+", "a/b.d/", "a/b.d/c0", "a/bz", "b", "deep/", "deep/01", "ü0"]


def keys(infos: Iterable[ObjectInfo]) -> list[str]:
    return [i.key for i in infos]


def fill(store: ObjectStore, objects: dict[str, bytes]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda item: store.write(*item), objects.items()))


def is_s3(backend: Backend) -> bool:
    return backend.name in ("s3", "s3-root")


class TestScan:
    def test_an_empty_or_absent_location_scans_empty(self, backend: Backend) -> None:
        # the root directory / prefix of a fresh store was never created
        assert list(backend.store.scan()) == []
        assert list(backend.store.scan("a/", start_after="a/b")) == []
        assert backend.store.stat("config.json") is None
        if backend.missing_bucket is not None:
            gone = backend.missing_bucket()
            assert list(gone.scan()) == []
            assert list(gone.scan("data/")) == []
            assert gone.stat("config.json") is None

    def test_order_is_str_order_and_nothing_is_hidden(self, store: ObjectStore) -> None:
        fill(store, TRICKY)
        found = list(store.scan())
        assert keys(found) == SORTED  # *.part leftovers included
        for info in found:
            assert info.size_bytes == len(TRICKY[info.key])
            assert info.modified_at is not None
            assert info.modified_at.tzinfo is not None
            assert abs(info.modified_at - datetime.now(UTC)) < timedelta(minutes=5)
        # the same order in UTF-8 bytes
        assert [k.encode() for k in keys(found)] == sorted(k.encode() for k in TRICKY)

    def test_prefix(self, store: ObjectStore) -> None:
        fill(store, TRICKY)
        for prefix, expected in PREFIXES:
            assert keys(store.scan(prefix)) == expected, prefix

    def test_start_after_resumes_exactly_after_each_key(self, store: ObjectStore) -> None:
        fill(store, TRICKY)
        for i, cursor in enumerate(SORTED):
            assert keys(store.scan(start_after=cursor)) == SORTED[i + 1 :], cursor
        assert keys(store.scan(start_after="")) == SORTED

    def test_start_after_a_cursor_that_is_no_key(self, store: ObjectStore) -> None:
        fill(store, TRICKY)
        for cursor in CURSORS:
            assert keys(store.scan(start_after=cursor)) == [k for k in SORTED if k > cursor]

    def test_start_after_past_every_key(self, store: ObjectStore) -> None:
        fill(store, TRICKY)
        assert list(store.scan(start_after="\U0010ffff")) == []

    def test_prefix_and_start_after_together(self, store: ObjectStore) -> None:
        fill(store, TRICKY)
        assert keys(store.scan("a/", start_after="a/b-c")) == ["a/b.d/c", "a/bb/c"]
        assert keys(store.scan("a/", start_after="0")) == ["a/b", "a/b-c", "a/b.d/c", "a/bb/c"]
        assert keys(store.scan("a/", start_after="a0")) == []
        assert keys(store.scan("a", start_after="a/bb/c")) == ["a0"]

    def test_only_the_librarys_temp_files_are_hidden(self, backend: Backend) -> None:
        if not backend.is_fsspec:
            pytest.skip("MemoryStore writes no temporary files")
        store = backend.store
        assert isinstance(store, FsspecStore)
        store.write("data/obj", b"x")
        store.write("data/obj.part", b"x")
        store.write("data/.hidden", b"x")
        tmp = f"{store.root}/data/.gocdbackup-tmp-crashed"
        store.fs.pipe_file(tmp, b"partial")
        assert keys(store.scan()) == ["data/.hidden", "data/obj", "data/obj.part"]

    def test_objects_outside_the_root_are_not_scanned(self, backend: Backend) -> None:
        store = backend.store
        if not isinstance(store, FsspecStore) or "/" not in store.root.strip("/"):
            pytest.skip("the store is not rooted at a prefix")
        store.write("in", b"x")
        if store.local:
            Path(store.root + "-x").mkdir()
        for sibling in (store.root + "-x/y", store.root + "0", store.root + ".b"):
            store.fs.pipe_file(sibling, b"outside")
        store.fs.invalidate_cache()
        assert keys(store.scan()) == ["in"]
        assert keys(store.scan(start_after="")) == ["in"]

    def test_many_objects(self, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
        """More than one S3 page (1000 keys): the listing is paged, in order, resumable
        across the page boundary, and the first key arrives after one request."""
        if backend.name == "gcs":
            pytest.skip("the emulator has no paging (see test_gcs_paging)")
        store = backend.store
        objects = {f"many/{i:05d}": str(i).encode() for i in range(1100)}
        fill(store, objects)
        expected = sorted(objects)
        calls: list[dict[str, Any]] = []
        if is_s3(backend):
            assert isinstance(store, FsspecStore)
            real = store.fs.call_s3

            def counting(method: str, *args: Any, **kwargs: Any) -> Any:
                if method.startswith("list_"):
                    calls.append(kwargs)
                return real(method, *args, **kwargs)

            monkeypatch.setattr(store.fs, "call_s3", counting)
        it = store.scan("many/")
        assert next(it).key == expected[0]
        if is_s3(backend):
            assert len(calls) == 1  # streamed: the rest is not listed yet
        assert [expected[0], *keys(it)] == expected
        if is_s3(backend):
            assert len(calls) == 2
            assert "ContinuationToken" in calls[1]
        calls.clear()
        assert keys(store.scan(start_after="many/00998")) == expected[999:]
        if is_s3(backend):
            assert isinstance(store, FsspecStore)
            base = store.root.partition("/")[2]
            # the server starts after the cursor: one request for the last 101 keys
            assert [c.get("StartAfter") for c in calls] == [f"{base}/many/00998".lstrip("/")]
        assert keys(store.scan("many/", start_after="many/01050")) == expected[1051:]


class TestStat:
    def test_present_missing_and_directory(self, store: ObjectStore) -> None:
        fill(store, TRICKY)
        scanned = {i.key: i for i in store.scan()}
        for key in ("a/b", "a/b-c", "é/ü", "z z/a b", LONG_KEY, "x.part"):
            info = store.stat(key)
            assert info is not None
            assert info.key == key
            assert info.size_bytes == len(TRICKY[key])
            assert info.version == scanned[key].version
            assert info.modified_at is not None
            listed_at = scanned[key].modified_at
            assert listed_at is not None
            assert abs(info.modified_at - listed_at) <= timedelta(seconds=1)
        for key in ("missing", "a/missing", "a/b/c", "nothing/at/all"):
            assert store.stat(key) is None, key
        for directory in ("a", "a/b.d", "a/b.d/", "deep", "z z"):
            assert store.stat(directory) is None, directory

    def test_stat_sees_a_change_at_once(self, store: ObjectStore) -> None:
        store.write("k", b"one")
        list(store.scan())  # a listing that a cache could keep
        store.write("k", b"three")
        info = store.stat("k")
        assert info is not None
        assert info.size_bytes == 5
        store.delete("k")
        assert store.stat("k") is None

    def test_unsafe_keys_are_refused(self, store: ObjectStore) -> None:
        for key in ("../x", "/abs", "a/../b", ""):
            with pytest.raises(ConfigError, match="unsafe object key"):
                store.stat(key)


# -- S3 and GCS specifics ---------------------------------------------------------------------


def _s3_store(server: Server, **options: Any) -> tuple[FsspecStore, str]:
    bucket = unique_bucket()
    store = FsspecStore(
        f"s3://{bucket}/repo",
        {"endpoint_url": server.endpoint, "key": S3_KEY, "secret": S3_SECRET, **options},
    )
    store.fs.mkdir(bucket)
    return store, bucket


def test_version_aware_s3_scans_latest_versions_page_by_page(
    moto_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, bucket = _s3_store(moto_server, version_aware=True)
    store.fs.call_s3(
        "put_bucket_versioning", Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    first = {}
    for i in range(7):
        store.write(f"k{i}", b"old")
        first[f"k{i}"] = store.stat(f"k{i}")
        store.write(f"k{i}", b"newer")  # two versions of every key
    store.delete("k3")  # a delete marker on top
    store.fs.pipe_file(f"{bucket}/outside", b"x")
    monkeypatch.setattr(listing, "_SCAN_PAGE", 3)  # versions straddle page boundaries
    found = list(store.scan())
    assert keys(found) == ["k0", "k1", "k2", "k4", "k5", "k6"]
    for info in found:
        assert info.size_bytes == 5
        assert info.version is not None
        old = first[info.key]
        assert old is not None
        assert old.version is not None
        assert info.version != old.version
        latest = store.stat(info.key)
        assert latest is not None
        assert latest.version == info.version
    assert keys(store.scan(start_after="k2")) == ["k4", "k5", "k6"]
    assert keys(store.scan("k5")) == ["k5"]
    assert store.stat("k3") is None


def test_version_aware_s3_on_an_unversioned_bucket_reports_no_version(
    moto_server: Server,
) -> None:
    store, _ = _s3_store(moto_server, version_aware=True)
    store.write("k", b"x")
    (info,) = store.scan()
    assert info.version is None
    stat = store.stat("k")
    assert stat is not None
    assert stat.version is None


def test_s3_without_version_awareness_reports_no_version(moto_server: Server) -> None:
    store, bucket = _s3_store(moto_server)
    store.fs.call_s3(
        "put_bucket_versioning", Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    store.write("k", b"x")
    (info,) = store.scan()
    stat = store.stat("k")
    assert stat is not None
    assert info.version is None  # as list() reports: open_read could not pin one
    assert stat.version is None


def test_s3_listing_errors_are_translated_and_retried(
    moto_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = _s3_store(moto_server)
    for i in range(5):
        store.write(f"k{i}", b"x")
    monkeypatch.setattr(listing, "_SCAN_PAGE", 2)
    real = store.fs.call_s3
    failures = iter([ConnectionResetError("reset by peer")])

    def flaky(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "list_objects_v2" and "ContinuationToken" in kwargs:
            err = next(failures, None)
            if err is not None:
                raise err
        return real(method, *args, **kwargs)

    monkeypatch.setattr(store.fs, "call_s3", flaky)
    with stamina.set_testing(True, attempts=3):
        assert keys(store.scan()) == [f"k{i}" for i in range(5)]  # page 2 was retried

    def denied(method: str, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("Access Denied")

    monkeypatch.setattr(store.fs, "call_s3", denied)
    with pytest.raises(StorageError, match="access denied"):
        list(store.scan())
    with pytest.raises(StorageError, match="access denied"):
        store.stat("k0")


def test_gcs_paging(gcs_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator ignores ``maxResults``, ``pageToken`` and ``startOffset``: here they are
    applied to its answer, as GCS would, so the driver's paging is exercised."""
    bucket = unique_bucket()
    store = EmulatorGcsStore(f"gs://{bucket}/repo", GCS_OPTIONS)
    store.fs.mkdir(bucket)
    fill(store, TRICKY)
    real = store.fs.call
    requests: list[dict[str, Any]] = []

    def paged(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if path != "b/{}/o":
            return real(method, path, *args, **kwargs)
        requests.append(dict(kwargs))
        token = kwargs.pop("pageToken", None)
        start = kwargs.pop("startOffset", None)
        size = kwargs.pop("maxResults")
        page = real(method, path, *args, **kwargs)
        items = [i for i in page.get("items", []) if start is None or i["name"] >= start]
        offset = int(token or 0)
        out: dict[str, Any] = {"kind": "storage#objects", "items": items[offset : offset + size]}
        if offset + size < len(items):
            out["nextPageToken"] = str(offset + size)
        return out

    monkeypatch.setattr(store.fs, "call", paged)
    monkeypatch.setattr(listing, "_SCAN_PAGE", 4)
    found = list(store.scan())
    assert keys(found) == SORTED
    assert all(i.version for i in found)  # the generation
    assert len(requests) == math.ceil(len(SORTED) / 4)
    assert requests[0]["prefix"] == "repo/"
    requests.clear()
    # startOffset is inclusive: the cursor itself is not repeated
    assert keys(store.scan(start_after="a/b")) == SORTED[SORTED.index("a/b") + 1 :]
    assert requests[0]["startOffset"] == "repo/a/b"
    info = store.stat("a/b")
    assert info is not None
    assert info.version == next(i.version for i in found if i.key == "a/b")


# -- local files ------------------------------------------------------------------------------


def test_local_scan_is_lazy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FsspecStore(str(tmp_path / "repo"))
    fill(store, {f"{d}/{i}": b"x" for d in ("a", "b", "c") for i in range(3)})
    opened: list[str] = []
    real = os.scandir

    def scandir(path: str) -> Any:
        opened.append(path)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    it = store.scan()
    assert next(it).key == "a/0"
    assert len(opened) == 2  # the root and "a" only
    assert keys(it) == [f"{d}/{i}" for d in "abc" for i in range(3)][1:]
    opened.clear()
    # a resumed scan does not enter the directories wholly before the cursor
    assert keys(store.scan(start_after="b/2")) == ["c/0", "c/1", "c/2"]
    assert [Path(p).name for p in opened] == ["repo", "b", "c"]  # "b/" may hold "b/3"
    opened.clear()
    assert keys(store.scan(start_after="b0")) == ["c/0", "c/1", "c/2"]
    assert [Path(p).name for p in opened] == ["repo", "c"]
    opened.clear()
    assert keys(store.scan("b/")) == ["b/0", "b/1", "b/2"]
    assert [Path(p).name for p in opened] == ["repo", "b"]


def test_local_scan_of_a_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    store = FsspecStore(str(tmp_path / "file"))
    assert list(store.scan()) == []


def test_memory_store_records_scans() -> None:
    store = MemoryStore()
    store.write("a", b"x")
    assert keys(store.scan("a", start_after="")) == ["a"]
    assert store.scans == [("a", "")]
    assert store.lists == []
