"""A bucket inventory (S3 Inventory, GCS Storage Insights) as the listing of an artefact store:
its manifest and data files read through :class:`FsspecStore` (so with the same credentials,
retries and error translation as everything else), its records streamed (CSV with the
standard library, ORC and Parquet with pyarrow, one batch at a time) and sorted by key in
bounded memory (:mod:`gocdbackup.repository.sorting`)."""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.listing import TEMP_PREFIX, is_temp
from gocdbackup.errors import (
    ConfigError,
    InventoryMismatch,
    NotFound,
    ObjectMissing,
    UnsupportedFormat,
)
from gocdbackup.model.inventory import (
    InventoryManifest,
    Record,
    csv_columns,
    missing_fields,
    norm,
    parse_manifest,
    row_decoder,
)
from gocdbackup.ports import ObjectInfo
from gocdbackup.repository.sorting import RUN_SIZE, sorted_records

_BATCH = 65_536
_PROVIDERS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}


class InventoryListing:
    """The objects an inventory lists under one artefact store, in key order (keys relative
    to the store's root, as :meth:`FsspecStore.scan` gives them)."""

    def __init__(
        self,
        manifest: InventoryManifest,
        *,
        prefix: str,
        options: dict[str, Any] | None = None,
        run_size: int = RUN_SIZE,
    ) -> None:
        self.manifest = manifest
        self._prefix = prefix
        self._options = dict(options or {})
        self._stores: dict[str, FsspecStore] = {}
        self._run_size = run_size

    @property
    def url(self) -> str:
        return self.manifest.url

    @property
    def taken_at(self) -> datetime:
        return self.manifest.taken_at

    def __repr__(self) -> str:
        return f"<InventoryListing {self.manifest.url} taken {self.taken_at.isoformat()}>"

    def scan(self, start_after: str = "") -> Iterator[ObjectInfo]:
        """The inventory's current objects under the store's root after ``start_after``."""
        records = (r for r in self._entries() if r[0] > start_after)
        for key, size, modified, version in sorted_records(records, run_size=self._run_size):
            yield ObjectInfo(key=key, size_bytes=size, modified_at=modified, version=version)

    def _entries(self) -> Iterator[Record]:
        prefix = f"{self._prefix}/" if self._prefix else ""
        cut = len(prefix)
        for url in self.manifest.files:
            for record in self._records(url):
                if record is None or not record[0].startswith(prefix):
                    continue
                key = record[0][cut:]
                if not key or key.endswith("/") or (TEMP_PREFIX in key and is_temp(key)):
                    continue  # "folder" markers and our own temporary files, as scan() hides
                yield (key, *record[1:]) if cut else record

    # -- reading files --------------------------------------------------------------------------

    def _store(self, url: str) -> tuple[FsspecStore, str]:
        base, _, name = url.rpartition("/")
        store = self._stores.get(base)
        if store is None:
            store = self._stores[base] = FsspecStore(base, self._options)
        return store, name

    def _records(self, url: str) -> Iterator[Record | None]:
        fmt = self.manifest.format
        store, name = self._store(url)
        if fmt == "csv":
            with store.open_read(name) as raw:
                yield from self._csv(raw, url, gzipped=name.endswith(".gz"))
            return
        with tempfile.TemporaryFile(prefix="gocdbackup-inventory-") as local:
            with store.open_read(name) as raw:
                shutil.copyfileobj(raw, local, 4 * 1024 * 1024)
            local.seek(0)
            yield from _columnar(local, fmt, url, url_encoded=self.manifest.url_encoded_keys)

    def _csv(self, raw: Any, url: str, *, gzipped: bool) -> Iterator[Record | None]:
        buffered = io.BufferedReader(raw, 1024 * 1024)
        binary: Any = gzip.GzipFile(fileobj=buffered) if gzipped else buffered
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        reader = csv.reader(text)
        columns = csv_columns(self.manifest)
        try:
            if not columns:  # a header row names them (GCS)
                columns = tuple(norm(c) for c in next(reader, []))
            _require(columns, url)
            width = len(columns)
            decode = row_decoder(columns, url_encoded=self.manifest.url_encoded_keys, origin=url)
            for values in reader:
                if len(values) != width:
                    if not values:
                        continue
                    raise UnsupportedFormat(
                        f"{url}: a record of {len(values)} fields where the schema has {width}"
                    )
                yield decode(values)
        except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, csv.Error) as exc:
            raise UnsupportedFormat(f"{url} is not a readable inventory file: {exc}") from None


def _require(columns: Sequence[str], url: str) -> None:
    """The inventory must carry each object's size and last write time (optional fields of
    both providers' configurations): without them no object could be judged."""
    missing = missing_fields(columns)
    if missing:
        raise ConfigError(
            f"{url} has no {' or '.join(missing)} column: add the object size and the "
            "last-modified date (S3: Size, LastModifiedDate; GCS: size, updated) to the "
            "inventory configuration's fields"
        )


def _columnar(
    local: IO[bytes], fmt: str, url: str, *, url_encoded: bool
) -> Iterator[Record | None]:
    try:
        import pyarrow  # noqa: PLC0415 - optional: only ORC and Parquet inventories need it
        import pyarrow.orc  # noqa: PLC0415
        import pyarrow.parquet  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            f"{url} is {fmt.upper()}: reading it needs pyarrow "
            "(pip install 'gocdbackup[inventory]'), or configure a CSV inventory"
        ) from None
    try:
        if fmt == "parquet":
            pf = pyarrow.parquet.ParquetFile(local)
            batches: Iterator[Any] = pf.iter_batches(batch_size=_BATCH)
        else:
            of = pyarrow.orc.ORCFile(local)
            batches = (of.read_stripe(i) for i in range(of.nstripes))
        for batch in batches:
            columns = [norm(n) for n in batch.schema.names]
            _require(columns, url)
            decode = row_decoder(columns, url_encoded=url_encoded, origin=url)
            for values in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                yield decode(values)
    except pyarrow.ArrowException as exc:
        raise UnsupportedFormat(f"{url} is not a readable {fmt} inventory file: {exc}") from None


def open_inventory(
    manifest_url: str,
    store: FsspecStore,
    *,
    options: dict[str, Any] | None = None,
    run_size: int = RUN_SIZE,
) -> InventoryListing:
    """The inventory whose manifest is at ``manifest_url``, as the listing of ``store``.

    Refused: a filesystem store (nothing inventories it: it is walked), a manifest of another
    provider, and an inventory of another bucket (:class:`InventoryMismatch`)."""
    provider = next((_PROVIDERS[p] for p in store.protocols if p in _PROVIDERS), None)
    if provider is None:
        raise ConfigError(
            f"the artefact store {store.url} is not a bucket: an inventory lists S3, MinIO or "
            "GCS buckets; scan a filesystem store without --listing"
        )
    base, _, name = manifest_url.rpartition("/")
    if not base or not name:
        raise ConfigError(f"{manifest_url!r} is not the URL of an inventory manifest file")
    try:
        data = FsspecStore(base, options).read(name)
    except ObjectMissing:
        raise NotFound(
            f"no inventory manifest at {manifest_url}: check the URL (S3: "
            "<prefix>/<bucket>/<config>/<YYYY-MM-DDTHH-MMZ>/manifest.json); nothing was scanned"
        ) from None
    manifest = parse_manifest(data, manifest_url)
    bucket, _, prefix = store.root.partition("/")
    if manifest.provider != provider:
        raise InventoryMismatch(
            f"{manifest_url} is a {manifest.provider.upper()} inventory and {store.url} is a "
            f"{provider.upper()} bucket; nothing was scanned"
        )
    if manifest.source_bucket and manifest.source_bucket != bucket:
        raise InventoryMismatch(
            f"{manifest_url} lists bucket {manifest.source_bucket!r}, not {bucket!r} "
            f"({store.url}); nothing was scanned"
        )
    if manifest.taken_at > datetime.now(UTC):
        raise InventoryMismatch(f"{manifest_url} says it was taken in the future")
    return InventoryListing(manifest, prefix=prefix, options=options, run_size=run_size)
