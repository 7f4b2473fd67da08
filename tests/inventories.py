"""Bucket inventories written the way S3 Inventory and GCS Storage Insights write them (moto and
the GCS emulator generate none): a manifest and data files, from a listing of the bucket.

The records are spread over several files in shuffled order (a real inventory promises no
order), and a versioned S3 inventory also carries noncurrent versions and delete markers."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import pyarrow as pa
import pyarrow.orc
import pyarrow.parquet

from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.ports import ObjectInfo

S3_CSV_SCHEMA = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag"


def _s3_time(at: datetime | None) -> str:
    assert at is not None
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _split(records: list[dict[str, Any]], files: int, seed: int) -> list[list[dict[str, Any]]]:
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    return [shuffled[i::files] for i in range(files)]


def s3_records(
    bucket: str, objects: Sequence[ObjectInfo], *, stale: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """One record per object (current), and for each key of ``stale`` a noncurrent version
    and a delete marker that a versioned inventory would list too."""
    out = [
        {
            "bucket": bucket,
            "key": o.key,
            "version_id": o.version or "",
            "is_latest": True,
            "is_delete_marker": False,
            "size": o.size_bytes,
            "last_modified_date": o.modified_at,
            "e_tag": uuid.uuid4().hex,
        }
        for o in objects
    ]
    for key in stale:
        for marker in (False, True):
            out.append(
                {
                    "bucket": bucket,
                    "key": key,
                    "version_id": uuid.uuid4().hex,
                    "is_latest": False,
                    "is_delete_marker": marker,
                    "size": 0 if marker else 7,
                    "last_modified_date": datetime(2020, 1, 1, tzinfo=UTC),
                    "e_tag": "",
                }
            )
    return out


def _s3_csv(records: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for r in records:
        writer.writerow(
            [
                r["bucket"],
                quote_plus(r["key"], safe="/"),  # S3 Inventory URL-encodes CSV keys
                r["version_id"],
                str(r["is_latest"]).lower(),
                str(r["is_delete_marker"]).lower(),
                r["size"],
                _s3_time(r["last_modified_date"]),
                r["e_tag"],
            ]
        )
    return gzip.compress(text.getvalue().encode())


def _table(records: list[dict[str, Any]], time_field: str) -> pa.Table:
    columns: dict[str, Any] = {name: [r[name] for r in records] for name in records[0]}
    fields = []
    for name in columns:
        if name == time_field:
            fields.append(pa.field(name, pa.timestamp("ms", tz="UTC")))
        elif name in ("size", "generation"):
            fields.append(pa.field(name, pa.int64()))
        elif name in ("is_latest", "is_delete_marker"):
            fields.append(pa.field(name, pa.bool_()))
        else:
            fields.append(pa.field(name, pa.string()))
    return pa.Table.from_pydict(columns, schema=pa.schema(fields))


def _columnar(table: pa.Table, fmt: str) -> bytes:
    sink = io.BytesIO()
    if fmt == "parquet":
        pyarrow.parquet.write_table(table, sink)
    else:
        pyarrow.orc.write_table(table, sink)
    return sink.getvalue()


def write_s3_inventory(
    dest: FsspecStore,
    source_bucket: str,
    objects: Sequence[ObjectInfo],
    *,
    fmt: str = "csv",
    taken_at: datetime | None = None,
    files: int = 3,
    stale: Sequence[str] = (),
    schema: str = S3_CSV_SCHEMA,
    seed: int = 7,
) -> str:
    """An S3 Inventory of ``objects`` in the bucket of ``dest`` (a store at a bucket's root):
    its data files and ``manifest.json``; the manifest's URL."""
    taken = taken_at or datetime.now(UTC)
    dest_bucket = dest.root.partition("/")[0]
    base = f"inv/{source_bucket}/daily/{taken:%Y-%m-%dT%H-%MZ}"
    ext = {"csv": "csv.gz", "orc": "orc", "parquet": "parquet"}[fmt]
    entries = []
    for part in _split(s3_records(source_bucket, objects, stale=stale), files, seed):
        if not part:
            continue
        key = f"inv/{source_bucket}/daily/data/{uuid.uuid4()}.{ext}"
        body = _s3_csv(part) if fmt == "csv" else _columnar(_table(part, "last_modified_date"), fmt)
        dest.write(key, body)
        entries.append({"key": key, "size": len(body), "MD5checksum": "0" * 32})
    manifest = {
        "sourceBucket": source_bucket,
        "destinationBucket": f"arn:aws:s3:::{dest_bucket}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(taken.timestamp() * 1000)),
        "fileFormat": {"csv": "CSV", "orc": "ORC", "parquet": "Parquet"}[fmt],
        "fileSchema": schema if fmt == "csv" else "struct<...>",
        "files": entries,
    }
    dest.write(f"{base}/manifest.json", json.dumps(manifest).encode())
    return f"s3://{dest_bucket}/{base}/manifest.json"


def write_gcs_inventory(
    dest: FsspecStore,
    source_bucket: str,
    objects: Sequence[ObjectInfo],
    *,
    fmt: str = "csv",
    taken_at: datetime | None = None,
    files: int = 3,
    seed: int = 7,
) -> str:
    """A GCS Storage Insights inventory report of ``objects``: shards (CSV with a header row,
    or Parquet) and the manifest beside them; the manifest's URL."""
    taken = taken_at or datetime.now(UTC)
    dest_bucket = dest.root.partition("/")[0]
    config = "0b6f3a7e-inventory"
    stem = f"reports/{config}_{taken:%Y-%m-%dT%H:%M:%S}"
    records = [
        {
            "bucket": source_bucket,
            "name": o.key,
            "size": o.size_bytes,
            "updated": o.modified_at,
            "storageClass": "STANDARD",
        }
        for o in objects
    ]
    names = []
    for n, part in enumerate(_split(records, files, seed)):
        name = f"{stem}_{n}.{fmt}"
        if fmt == "csv":
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=list(records[0]), lineterminator="\n")
            writer.writeheader()
            for r in part:
                writer.writerow({**r, "updated": r["updated"].isoformat()})
            body = text.getvalue().encode()
        else:
            body = _columnar(_table(part, "updated"), "parquet")
        dest.write(name, body)
        names.append(name.rsplit("/", 1)[-1])
    manifest = {
        "report_config": {"source_bucket": source_bucket, "display_name": "nightly"},
        "records_processed": len(records),
        "snapshot_time": taken.isoformat().replace("+00:00", "Z"),
        "shard_count": len(names),
        "report_shards_file_names": names,
    }
    dest.write(f"{stem}_manifest.json", json.dumps(manifest).encode())
    return f"gs://{dest_bucket}/{stem}_manifest.json"
