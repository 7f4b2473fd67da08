"""What both facades wire the same way: the PostgreSQL server a DSN names (recording gocdnext's
goose version), the store a URL names, and the installed version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from gocdbackup.drivers.bucket_versions import bucket_versioned, open_versioned
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.inventory import open_inventory
from gocdbackup.drivers.postgres import PostgresServer, goose_version
from gocdbackup.errors import ConfigError
from gocdbackup.ports import ObjectListing, ObjectStore
from gocdbackup.ports_bucket import VersionedBucket


def __version__() -> str:

    try:
        return version("gocdbackup")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def postgres_server(
    dsn: str, *, bindir: str | None = None, restore_settings: dict[str, str] | None = None
) -> PostgresServer:
    """The server ``dsn`` names, recording gocdnext's goose version in snapshots and
    inspections (the wiring both facades use)."""
    return PostgresServer(
        dsn, bindir=bindir, restore_settings=restore_settings, schema_version=goose_version
    )


def store_of(
    value: str | ObjectStore | None, options: dict[str, Any] | None = None
) -> ObjectStore | None:
    if value is None or not isinstance(value, str):
        return value
    return FsspecStore(value, options)


def versions_of(
    value: str | ObjectStore | None, options: dict[str, Any] | None = None
) -> VersionedBucket:
    """The versioned bucket an artefact-store URL names (restoring from its own versions)."""
    if not isinstance(value, str):
        raise ConfigError("restoring from the bucket's versions needs the artefact store's URL")
    return open_versioned(value, options)


def artifact_store(
    value: str | ObjectStore | None, options: dict[str, Any] | None = None
) -> ObjectStore | None:
    """The artefact store a backup reads.  An S3 bucket with versioning enabled is read
    version-aware unless told otherwise (``version_aware`` in the options), so the backup
    records each object's version id and reads the version it listed."""
    if not isinstance(value, str) or not value.startswith(("s3://", "s3a://")):
        return store_of(value, options)
    given = dict(options or {})
    store = FsspecStore(value, given)
    if "version_aware" in given or not bucket_versioned(store):
        return store
    return FsspecStore(value, {**given, "version_aware": True})


def inventory_of(
    manifest_url: str, store: ObjectStore | None, options: dict[str, Any] | None = None
) -> ObjectListing:
    """The bucket inventory whose manifest is at ``manifest_url``, checked against the
    artefact store ``store`` and read with the artefact store's ``options``."""
    if not isinstance(store, FsspecStore):
        raise ConfigError("an inventory (a listing URL) needs the artefact store's URL")
    return open_inventory(manifest_url, store, options=options)
