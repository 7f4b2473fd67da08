"""L0: frozen values and pure functions. No I/O, no clock, no logging."""

from gocdbackup.model.backup import (
    BackupSet,
    BackupStatus,
    ChunkRef,
    Component,
    ConsistencyPoint,
    DatabaseInfo,
    KeyCheck,
    TableRows,
    Timings,
)
from gocdbackup.model.copy import CopyResult
from gocdbackup.model.durations import format_duration, parse_duration
from gocdbackup.model.gc import BlobInfo, GcPlan, GcResult, plan_gc
from gocdbackup.model.ids import is_backup_id, make_backup_id
from gocdbackup.model.manifest import FORMAT_VERSION, Manifest
from gocdbackup.model.progress import ProgressEvent
from gocdbackup.model.restore import RestoreReport, TableDiff, diff_tables
from gocdbackup.model.retention import Decision, RetentionPlan, RetentionPolicy, decide_retention
from gocdbackup.model.runbook import Outstanding, RunbookReport, RunbookStep
from gocdbackup.model.verify import BackupCheck, BlobProblem, DamagedBlob, VerifyReport

__all__ = [
    "FORMAT_VERSION",
    "BackupCheck",
    "BackupSet",
    "BackupStatus",
    "BlobInfo",
    "BlobProblem",
    "ChunkRef",
    "Component",
    "ConsistencyPoint",
    "CopyResult",
    "DamagedBlob",
    "DatabaseInfo",
    "Decision",
    "GcPlan",
    "GcResult",
    "KeyCheck",
    "Manifest",
    "Outstanding",
    "ProgressEvent",
    "RestoreReport",
    "RetentionPlan",
    "RetentionPolicy",
    "RunbookReport",
    "RunbookStep",
    "TableDiff",
    "TableRows",
    "Timings",
    "VerifyReport",
    "decide_retention",
    "diff_tables",
    "format_duration",
    "is_backup_id",
    "make_backup_id",
    "parse_duration",
    "plan_gc",
]
