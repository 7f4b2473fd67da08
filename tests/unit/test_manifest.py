"""Manifests round-trip exactly; malformed or future ones raise a typed error."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gocdbackup.errors import GocdBackupError, UnsupportedFormat
from gocdbackup.model import (
    BackupSet,
    BackupStatus,
    ChunkRef,
    Component,
    ConsistencyPoint,
    DatabaseInfo,
    KeyCheck,
    Manifest,
    TableRows,
    Timings,
)
from gocdbackup.model.archive_layout import ArchiveLayout, DataBlock

hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
text = st.text(max_size=40)


@st.composite
def components(draw: st.DrawFn) -> Component:
    chunks = draw(
        st.lists(
            st.builds(
                ChunkRef,
                blob_id=hex64,
                size_bytes=st.integers(0, 2**40),
                stored_bytes=st.integers(0, 2**40),
            ),
            max_size=20,
        )
    )
    size = sum(c.size_bytes for c in chunks)
    layout = None
    if size >= 2 and draw(st.booleans()):
        edges = sorted(draw(st.sets(st.integers(1, size), min_size=1, max_size=8)))
        blocks = [DataBlock(dump_id=i, start=a, end=b) for i, (a, b) in enumerate(pairwise(edges))]
        layout = ArchiveLayout(toc_end=edges[0], int_size=4, blocks=tuple(blocks))
    return Component(
        kind=draw(st.sampled_from(["postgres_dump", "artifact_index"])),
        layout=layout,
        size_bytes=size,
        sha256=draw(hex64),
        chunks=tuple(chunks),
        stored_bytes=draw(st.integers(0, 2**40)),
        reused_bytes=draw(st.integers(0, 2**40)),
    )


@st.composite
def backup_sets(draw: st.DrawFn) -> BackupSet:
    started = draw(times)
    return BackupSet(
        id=draw(text),
        status=draw(st.sampled_from(BackupStatus)),
        label=draw(text),
        pin=draw(st.none() | text),
        parent=draw(st.none() | text),
        tool_version=draw(text),
        key_check=draw(
            st.none()
            | st.builds(
                KeyCheck,
                fingerprint=st.text("0123456789abcdef", min_size=16, max_size=16),
                checked=st.integers(0, 10**6),
                opened=st.integers(0, 10**6),
            )
        ),
        point=ConsistencyPoint(
            snapshot_at=draw(times),
            snapshot_id=draw(text),
            wal_lsn=draw(text),
            timeline=draw(st.integers(0, 2**31)),
            server_version=draw(text),
            server_version_num=draw(st.integers(0, 10**7)),
            goose_version=draw(st.none() | st.integers(0, 2**40)),
            store_marker=draw(st.none() | text),
        ),
        database=DatabaseInfo(
            name=draw(text),
            owner=draw(text),
            encoding=draw(text),
            size_bytes=draw(st.integers(0, 2**50)),
            data_bytes=draw(st.integers(0, 2**50)),
            pg_dump_version=draw(text),
            tables=tuple(
                draw(
                    st.lists(
                        st.builds(TableRows, name=text, rows=st.integers(0, 2**50)), max_size=10
                    )
                )
            ),
        ),
        components=tuple(draw(st.lists(components(), max_size=3))),
        timings=Timings(
            started_at=started,
            finished_at=started + draw(st.timedeltas(timedelta(0), timedelta(days=1))),
            dump_seconds=draw(st.floats(0, 1e6, allow_nan=False)),
        ),
    )


@given(backup_sets())
def test_manifest_round_trips_exactly(backup: BackupSet) -> None:
    manifest = Manifest(backup=backup)
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert Manifest.from_dict(json.loads(manifest.to_json())).backup == backup


@given(backup_sets(), st.integers(2, 1000))
def test_future_format_is_refused_with_upgrade_hint(backup: BackupSet, version: int) -> None:
    doc = Manifest(backup=backup).to_dict()
    doc["format_version"] = version
    with pytest.raises(UnsupportedFormat, match="upgrade gocdbackup"):
        Manifest.from_dict(doc)


@given(backup_sets(), st.data())
def test_any_missing_required_field_is_a_typed_error(
    backup: BackupSet, data: st.DataObject
) -> None:
    doc = Manifest(backup=backup).to_dict()
    optional = {"pin", "artifacts", "key", "parent"}  # optional fields may be absent
    key = data.draw(st.sampled_from(sorted(set(doc) - optional)))
    del doc[key]
    with pytest.raises(UnsupportedFormat):
        Manifest.from_dict(doc)


@given(st.recursive(st.none() | st.booleans() | st.integers() | text, st.lists, max_leaves=5))
def test_arbitrary_json_never_escapes_as_a_vendor_error(value: object) -> None:
    with pytest.raises(GocdBackupError):
        Manifest.from_json(json.dumps(value))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(kind="something-else"), "not a gocdbackup manifest"),
        (lambda d: d.update(format_version="1"), "format_version"),
        (lambda d: d.update(format_version=0), "format_version 0"),
        (lambda d: d["point"].update(timeline="one"), "timeline"),
        (lambda d: d["point"].update(snapshot_at="2026-01-01T00:00:00"), "UTC offset"),
        (lambda d: d["database"].update(tables=[["t"]]), "tables"),
        (lambda d: d.update(status="exploded"), "malformed manifest"),
        (lambda d: d["components"][0].update(size_bytes=1), "chunks add up"),
        (lambda d: d["components"][0].update(chunks=[["nothex", 1, 1]]), "blob_id"),
        (lambda d: d["components"][0].update(chunks=[["a" * 64, 5]]), "entries must be"),
        (
            lambda d: d["components"][0].update(
                layout={"toc_end": 2, "int_size": 4, "blocks": [[1, 2, 9]]}
            ),
            "block 1 does not fit",
        ),
        (
            lambda d: d["components"][0].update(
                layout={"toc_end": 2, "int_size": 4, "blocks": [[1, 2]]}
            ),
            "dump id, start, end",
        ),
        (lambda d: d["components"][0].update(layout=[]), "layout is not an object"),
    ],
)
def test_malformed_manifests_say_what_is_wrong(mutate: object, message: str) -> None:
    backup = BackupSet(
        id="20261125T000000Z-abcdef",
        status=BackupStatus.DONE,
        point=ConsistencyPoint(
            snapshot_at=datetime(2026, 11, 25, tzinfo=UTC),
            snapshot_id="s",
            wal_lsn="0/1",
            timeline=1,
            server_version="16.4",
            server_version_num=160004,
        ),
        database=DatabaseInfo(
            name="g", owner="g", encoding="UTF8", size_bytes=1, pg_dump_version="18.1"
        ),
        components=(
            Component(
                kind="postgres_dump",
                size_bytes=5,
                sha256="0" * 64,
                chunks=(ChunkRef(blob_id="1" * 64, size_bytes=5),),
            ),
        ),
        timings=Timings(
            started_at=datetime(2026, 11, 25, tzinfo=UTC),
            finished_at=datetime(2026, 11, 25, tzinfo=UTC),
        ),
    )
    doc = Manifest(backup=backup).to_dict()
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(UnsupportedFormat, match=message):
        Manifest.from_dict(doc)


def test_non_json_is_refused() -> None:
    with pytest.raises(UnsupportedFormat, match="not JSON"):
        Manifest.from_json(b"\xff\x00garbage")
