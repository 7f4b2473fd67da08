"""Bucket inventories as a listing source, the pure part: what an S3 Inventory ``manifest.json``
or a GCS Storage Insights inventory manifest says (when the listing was taken, of which
bucket, in which files and format), and one inventory record turned into a listed object.

S3 Inventory publishes ``<prefix>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/manifest.json``
naming its data files (``CSV`` gzipped without a header, with URL-encoded keys; ``ORC``;
``Parquet``) and their column list (``fileSchema``); ``creationTimestamp`` (milliseconds since
the epoch) is when it began to read the bucket.  A GCS inventory report writes its shards
(CSV with a header row, or Parquet) and a manifest whose ``snapshot_time`` is the instant the
report describes and whose ``report_shards_file_names`` name the shards beside it.

The instant bounds what the listing can know: an object written after it is not in it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from attrs import frozen

from gocdbackup.errors import UnsupportedFormat

FORMATS = ("csv", "orc", "parquet")


@frozen(kw_only=True)
class InventoryManifest:
    """One inventory, as its manifest describes it."""

    url: str  # where the manifest was read
    provider: str  # "s3" or "gcs"
    format: str  # one of FORMATS
    #: the instant the listing describes: nothing written later is in it
    taken_at: datetime
    #: the bucket the inventory lists ("" where the manifest does not say)
    source_bucket: str
    #: the data files, as URLs of the same scheme as the manifest
    files: tuple[str, ...]
    #: the columns of a CSV without a header row (S3); empty where the file has a header
    columns: tuple[str, ...] = ()

    @property
    def url_encoded_keys(self) -> bool:
        """S3 Inventory URL-encodes the keys of its CSV files (not of ORC or Parquet)."""
        return self.provider == "s3" and self.format == "csv"


def parse_manifest(data: bytes, url: str) -> InventoryManifest:
    """The manifest at ``url`` (its bytes ``data``): S3 Inventory's or a GCS inventory
    report's, told apart by their fields.  :class:`UnsupportedFormat` otherwise."""
    try:
        doc = json.loads(data)
    except ValueError:
        raise UnsupportedFormat(f"{url} is not JSON: not an inventory manifest") from None
    if not isinstance(doc, dict):
        raise UnsupportedFormat(f"{url} is not an inventory manifest")
    try:
        if "fileFormat" in doc and "files" in doc:
            return _s3_manifest(doc, url)
        if "report_shards_file_names" in doc or "snapshot_time" in doc:
            return _gcs_manifest(doc, url)
    except (KeyError, TypeError, ValueError) as exc:
        raise UnsupportedFormat(f"{url} is not a readable inventory manifest: {exc}") from None
    raise UnsupportedFormat(
        f"{url} is neither an S3 Inventory manifest.json nor a GCS inventory report manifest"
    )


def _scheme_and_bucket(url: str) -> tuple[str, str]:
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise ValueError(f"{url!r} is not a URL")
    return scheme, rest.split("/", 1)[0]


def _s3_manifest(doc: dict[str, Any], url: str) -> InventoryManifest:
    scheme, bucket = _scheme_and_bucket(url)
    fmt = str(doc["fileFormat"]).lower()
    if fmt not in FORMATS:
        raise ValueError(f"fileFormat {doc['fileFormat']!r} is not CSV, ORC or Parquet")
    destination = str(doc.get("destinationBucket", "")).rsplit(":", 1)[-1] or bucket
    columns = tuple(c.strip() for c in str(doc.get("fileSchema", "")).split(","))
    if fmt == "csv" and "Key" not in columns:
        raise ValueError("fileSchema names no Key column")
    files = tuple(f"{scheme}://{destination}/{f['key']}" for f in doc["files"])
    return InventoryManifest(
        url=url,
        provider="s3",
        format=fmt,
        taken_at=datetime.fromtimestamp(int(doc["creationTimestamp"]) / 1000, UTC),
        source_bucket=str(doc.get("sourceBucket", "")),
        files=files,
        columns=columns if fmt == "csv" else (),
    )


def _gcs_manifest(doc: dict[str, Any], url: str) -> InventoryManifest:
    base = url.rsplit("/", 1)[0]
    names = [str(n) for n in doc["report_shards_file_names"]]
    kinds = {n.rsplit(".", 1)[-1].lower() for n in names}
    if len(kinds) > 1 or not kinds <= {"csv", "parquet"}:
        raise ValueError(f"shards of kinds {sorted(kinds)}: expected .csv or .parquet")
    config = doc.get("report_config") or {}
    source = config.get("source_bucket") or config.get("sourceBucket") or ""
    return InventoryManifest(
        url=url,
        provider="gcs",
        format=kinds.pop() if kinds else "csv",
        taken_at=parse_time(str(doc["snapshot_time"])),
        source_bucket=str(source).rsplit("/", 1)[-1],
        files=tuple(f"{base}/{n.rsplit('/', 1)[-1]}" for n in names),
    )


def parse_time(value: str) -> datetime:
    """An RFC 3339 / ISO 8601 instant (``Z`` allowed); naive times are UTC."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


#: every spelling of a column the entries need, normalised (lower case, no ``_``): S3's CSV
#: schema (``LastModifiedDate``), ORC/Parquet (``last_modified_date``), GCS (``updated``)
_KEY = ("key", "name")
_SIZE = ("size",)
_MODIFIED = ("lastmodifieddate", "updated")
_VERSION = ("versionid", "generation")


def norm(name: str) -> str:
    """A column name as :func:`row_decoder` knows it: lower case, without ``_``."""
    return name.replace("_", "").lower()


def missing_fields(columns: Sequence[str]) -> list[str]:
    """What an inventory of the normalised ``columns`` lacks to judge objects by: a key, a
    size and a last write time (the last two optional fields of both providers)."""
    have = set(columns)
    return [
        label
        for label, names in (("key", _KEY), ("size", _SIZE), ("last-modified time", _MODIFIED))
        if not have & set(names)
    ]


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _instant(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):  # ORC/Parquet timestamps read as epoch milliseconds
        return datetime.fromtimestamp(value / 1000, UTC)
    return parse_time(str(value))


def normalised(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with its column names normalised (what :func:`entry` expects)."""
    return {norm(k): v for k, v in record.items()}


def entry(record: Mapping[str, Any], *, url_encoded: bool, origin: str) -> Record | None:
    """The current object one normalised inventory record describes, or None for a record
    that is not one (a noncurrent version, a delete marker): :func:`row_decoder` for a
    single record."""
    decode = row_decoder(tuple(record), url_encoded=url_encoded, origin=origin)
    return decode(list(record.values()))


#: one current object of an inventory: (key, size, last write, version)
Record = tuple[str, int, "datetime | None", "str | None"]


def row_decoder(
    columns: Sequence[str], *, url_encoded: bool, origin: str
) -> Callable[[Sequence[Any]], Record | None]:
    """A function from one row of the normalised ``columns`` to the current object it
    describes, or None for a noncurrent version or a delete marker.  Fields are strings (CSV)
    or typed values (ORC, Parquet: booleans, integers, datetimes).  A row without a key or a
    size, or with an unreadable one, raises :class:`UnsupportedFormat` naming ``origin``.
    Write times repeat (objects written in the same second), so their parses are cached."""
    index = {name: n for n, name in enumerate(columns)}
    k = next((index[c] for c in _KEY if c in index), None)
    z = next((index[c] for c in _SIZE if c in index), None)
    m = next((index[c] for c in _MODIFIED if c in index), None)
    v = next((index[c] for c in _VERSION if c in index), None)
    latest, marker = index.get("islatest"), index.get("isdeletemarker")
    times: dict[str, datetime | None] = {}

    def decode(fields: Sequence[Any]) -> Record | None:
        if latest is not None and fields[latest] != "true" and not _flag(fields[latest]):
            return None
        if marker is not None and _flag(fields[marker]):
            return None
        key = None if k is None else fields[k]
        if key in (None, "") or z is None or fields[z] in (None, ""):
            raise UnsupportedFormat(f"{origin}: an inventory record without a key or size")
        key = str(key)
        if url_encoded and ("%" in key or "+" in key):
            key = unquote_plus(key)
        try:
            size = int(fields[z])
            if m is None:
                at = None
            elif (at := times.get(fields[m], _UNSEEN)) is _UNSEEN:
                at = times[fields[m]] = _instant(fields[m])
        except (TypeError, ValueError) as exc:
            raise UnsupportedFormat(f"{origin}: an unreadable inventory record ({exc})") from None
        raw = None if v is None else fields[v]
        version = None if raw in (None, "", "null") else str(raw)
        if len(times) > 65_536:
            times.clear()
        return key, size, at, version

    return decode


_UNSEEN: Any = object()


def csv_columns(manifest: InventoryManifest) -> tuple[str, ...]:
    """The normalised column names of the manifest's header-less CSV files."""
    return tuple(norm(c) for c in manifest.columns)
