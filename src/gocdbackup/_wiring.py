"""What both facades wire the same way: the PostgreSQL server a DSN names (recording gocdnext's
goose version), the store a URL names, and the installed version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.postgres import PostgresServer, goose_version
from gocdbackup.ports import ObjectStore


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
