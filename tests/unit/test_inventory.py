"""Bucket inventories as a listing source: the manifests and records (pure), the external sort,
and scans read from a listing taken earlier (public fakes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gocdbackup.errors import ReportMismatch, UnsupportedFormat
from gocdbackup.model.inventory import Record, entry, normalised, parse_manifest
from gocdbackup.model.orphan_report import parse_report
from gocdbackup.ops.orphans import scan_orphans
from gocdbackup.repository.sorting import sorted_records
from gocdbackup.testing import FakeClock, FrozenListing
from tests.unit.test_orphans_ops import World, art_key

S3_MANIFEST = {
    "sourceBucket": "gocdnext-artifacts",
    "destinationBucket": "arn:aws:s3:::inventories",
    "version": "2016-11-30",
    "creationTimestamp": "1764460800000",
    "fileFormat": "CSV",
    "fileSchema": "Bucket, Key, Size, LastModifiedDate, IsLatest",
    "files": [{"key": "inv/gocdnext-artifacts/daily/data/a.csv.gz", "size": 10}],
}


def test_s3_manifest_names_its_files_time_and_columns() -> None:
    url = "s3://inventories/inv/gocdnext-artifacts/daily/2025-11-30T00-00Z/manifest.json"
    m = parse_manifest(json.dumps(S3_MANIFEST).encode(), url)
    assert (m.provider, m.format, m.source_bucket) == ("s3", "csv", "gocdnext-artifacts")
    assert m.taken_at == datetime(2025, 11, 30, tzinfo=UTC)
    assert m.files == ("s3://inventories/inv/gocdnext-artifacts/daily/data/a.csv.gz",)
    assert m.columns == ("Bucket", "Key", "Size", "LastModifiedDate", "IsLatest")
    assert m.url_encoded_keys
    orc = parse_manifest(json.dumps({**S3_MANIFEST, "fileFormat": "ORC"}).encode(), url)
    assert (orc.format, orc.columns, orc.url_encoded_keys) == ("orc", (), False)


def test_gcs_manifest_names_the_shards_beside_it() -> None:
    doc = {
        "report_config": {"source_bucket": "gocdnext-artifacts"},
        "snapshot_time": "2025-11-30T01:02:03Z",
        "report_shards_file_names": ["cfg_2025-11-30_0.parquet", "cfg_2025-11-30_1.parquet"],
    }
    m = parse_manifest(json.dumps(doc).encode(), "gs://reports/nightly/cfg_manifest.json")
    assert (m.provider, m.format, m.source_bucket) == ("gcs", "parquet", "gocdnext-artifacts")
    assert m.taken_at == datetime(2025, 11, 30, 1, 2, 3, tzinfo=UTC)
    assert m.files[1] == "gs://reports/nightly/cfg_2025-11-30_1.parquet"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"PAR1", "not JSON"),
        (b"[1, 2]", "not an inventory manifest"),
        (b'{"kind": "something"}', "neither"),
        (json.dumps({**S3_MANIFEST, "fileFormat": "Avro"}).encode(), "Avro"),
        (json.dumps({**S3_MANIFEST, "fileSchema": "Bucket, Size"}).encode(), "no Key"),
        (json.dumps({**S3_MANIFEST, "creationTimestamp": "soon"}).encode(), "readable"),
        (json.dumps({"snapshot_time": "x", "report_shards_file_names": []}).encode(), "readable"),
    ],
)
def test_unreadable_manifests_are_refused(data: bytes, match: str) -> None:
    with pytest.raises(UnsupportedFormat, match=match):
        parse_manifest(data, "s3://inventories/manifest.json")


def test_records_give_current_objects_only() -> None:
    def one(**record: object) -> Record | None:
        return entry(normalised(record), url_encoded=True, origin="f.csv.gz")

    got = one(
        Key="notes/a+report%2C+%C3%BC.txt", Size="12", LastModifiedDate="2025-11-30T00:00:00.000Z"
    )
    assert got is not None
    key, size, _, _ = got
    assert key == "notes/a report, ü.txt"
    assert size == 12
    assert one(Key="k", Size="1", IsLatest="false") is None  # a noncurrent version
    assert one(Key="k", Size="0", IsLatest="true", IsDeleteMarker="true") is None
    with pytest.raises(UnsupportedFormat, match="without a key or size"):
        one(Key="k", Size="")
    with pytest.raises(UnsupportedFormat, match="unreadable"):
        one(Key="k", Size="many")
    parquet = entry(
        normalised({"key": "a b", "size": 3, "last_modified_date": datetime(2025, 1, 1)}),
        url_encoded=False,
        origin="f.parquet",
    )
    assert parquet is not None
    key, _, modified, _ = parquet
    assert key == "a b"
    assert modified == datetime(2025, 1, 1, tzinfo=UTC)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.text(max_size=6), st.integers(0, 9)), max_size=200),
    st.integers(1, 40),
)
def test_external_sort_equals_sorted(records: list[tuple[str, int]], run_size: int) -> None:
    assert list(sorted_records(iter(records), run_size=run_size)) == sorted(records)


def test_a_scan_from_a_listing_judges_as_one_from_the_store(clock: FakeClock) -> None:
    world = _world(clock)
    listing = FrozenListing(world.store, clock.now())
    assert _classes(scan_orphans(world.db, world.store, ctx=world.ctx(), listing=listing)) == (
        _classes(scan_orphans(world.db, world.store, ctx=world.ctx()))
    )


def test_a_listing_taken_earlier_rechecks_rows_and_never_sees_newer_orphans(
    clock: FakeClock,
) -> None:
    world = _world(clock)
    listing = FrozenListing(world.store, clock.now(), url="s3://inv/manifest.json")
    world.obj(world.missing, 100)  # the missing object arrives after the inventory
    newer = art_key()
    world.obj(newer)  # and an orphan
    clock.advance(timedelta(days=1))
    listed = scan_orphans(world.db, world.store, ctx=world.ctx())
    report = scan_orphans(world.db, world.store, ctx=world.ctx(), listing=listing)
    assert listed.counts["missing_object"] == report.counts["missing_object"] == 0
    assert listed.counts["size_mismatch"] == report.counts["size_mismatch"] == 1
    assert listed.counts["orphan_object"] == 4
    assert report.counts["orphan_object"] == 3
    assert newer not in {r.key for r in report.rows()}
    assert (report.listing, report.listed_at) == ("s3://inv/manifest.json", listing.taken_at)
    again = parse_report(report.to_json_lines(), origin="memory")
    assert (again.listing, again.listed_at) == (report.listing, report.listed_at)


def test_a_resume_keeps_to_the_listing_it_began_with(clock: FakeClock) -> None:
    world = _world(clock)
    listing = FrozenListing(world.store, clock.now())
    partial = _incomplete(scan_orphans(world.db, world.store, ctx=world.ctx(), listing=listing))
    with pytest.raises(ReportMismatch, match="resume it with --listing"):
        scan_orphans(world.db, world.store, ctx=world.ctx(), resume=partial)
    plain = _incomplete(scan_orphans(world.db, world.store, ctx=world.ctx()))
    with pytest.raises(ReportMismatch, match="without --listing"):
        scan_orphans(world.db, world.store, ctx=world.ctx(), resume=plain, listing=listing)
    done = scan_orphans(world.db, world.store, ctx=world.ctx(), resume=partial, listing=listing)
    assert done.complete


def _incomplete(report: object) -> object:
    import attrs

    return attrs.evolve(report, complete=False)  # type: ignore[misc]


def _world(clock: FakeClock) -> World:
    w = World(clock)
    for _ in range(3):
        key = art_key()
        w.row(key, data=w.obj(key))
    w.missing = art_key()
    w.row(w.missing, data=b"x" * 99)
    w.orphans = [art_key() for _ in range(3)]
    for key in w.orphans:
        w.obj(key)
    clock.advance(timedelta(days=3))
    return w


def _classes(report: object) -> list[tuple[str, str]]:
    return [(r.key, r.cls.value) for r in report.rows()]  # type: ignore[attr-defined]
