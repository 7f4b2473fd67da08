"""gocdnext's tables as far as gocdbackup reads or changes them: which columns reference
artefact-store objects, the states those rows move through, and goose's version table."""

from __future__ import annotations

import enum

from attrs import frozen

#: goose's bookkeeping table (``version_id``, ``is_applied``)
GOOSE_TABLE = "goose_db_version"
#: the platform setting that names the artefact store (a JSON value, credentials encrypted)
STORAGE_SETTING = "artifacts.storage"


class Table(enum.StrEnum):
    """The tables whose rows reference artefact-store objects."""

    ARTIFACTS = "artifacts"
    CACHES = "caches"
    JOB_RUNS = "job_runs"


@frozen(kw_only=True)
class ObjectColumn:
    """One column that holds an object key: its table, the states its rows go through, and the
    column stamping a row's latest change."""

    table: Table
    column: str
    statuses: tuple[str, ...]
    stamp: str
    #: how such a row is retired when its object is gone, the way gocdnext's sweeper expects
    retire: str


OBJECT_COLUMNS = (
    ObjectColumn(
        table=Table.ARTIFACTS,
        column="storage_key",
        statuses=("pending", "ready", "deleting"),
        stamp="created_at / deleted_at",
        retire="status 'deleting', deleted_at and expires_at now (the sweeper deletes it)",
    ),
    ObjectColumn(
        table=Table.CACHES,
        column="storage_key",
        statuses=("pending", "ready"),
        stamp="updated_at",
        retire="the row is deleted (a cache miss is harmless)",
    ),
    ObjectColumn(
        table=Table.JOB_RUNS,
        column="logs_archive_uri",
        statuses=("ready",),
        stamp="logs_archived_at",
        retire="logs_archive_uri and logs_archived_at cleared",
    ),
)
