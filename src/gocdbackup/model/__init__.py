"""L0: frozen values and pure functions. No I/O, no clock, no logging."""

from gocdbackup.model.backup import (
    BackupSet,
    BackupStatus,
    ChunkRef,
    Component,
    ConsistencyPoint,
    DatabaseInfo,
    TableRows,
    Timings,
)
from gocdbackup.model.ids import is_backup_id, make_backup_id
from gocdbackup.model.manifest import FORMAT_VERSION, Manifest
from gocdbackup.model.progress import ProgressEvent
from gocdbackup.model.restore import RestoreReport, TableDiff, diff_tables
from gocdbackup.model.verify import BackupCheck, VerifyReport

__all__ = [
    "FORMAT_VERSION",
    "BackupCheck",
    "BackupSet",
    "BackupStatus",
    "ChunkRef",
    "Component",
    "ConsistencyPoint",
    "DatabaseInfo",
    "Manifest",
    "ProgressEvent",
    "RestoreReport",
    "TableDiff",
    "TableRows",
    "Timings",
    "VerifyReport",
    "diff_tables",
    "is_backup_id",
    "make_backup_id",
]
