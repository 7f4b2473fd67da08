"""gocdbackup: consistent, encrypted, verifiable backups of a gocdnext installation.

Start with :class:`GocdBackup`::

    from gocdbackup import GocdBackup
    gb = GocdBackup.init("file:///srv/backups/gocdnext", password="…")
    backup = gb.backup("postgresql://gocdnext@db/gocdnext", label="nightly")
"""

from gocdbackup._facade import BackupList, GocdBackup
from gocdbackup._reconciler import Reconciler
from gocdbackup.context import CancelToken, OpContext
from gocdbackup.drivers.report_files import load_report, save_report, write_report_csv
from gocdbackup.errors import (
    BackupNotFound,
    Cancelled,
    ConfigError,
    ConfirmationMismatch,
    DriverError,
    EmptyStore,
    GocdBackupError,
    IntegrityError,
    NotFound,
    PermissionDenied,
    PostgresError,
    PreconditionFailed,
    RestoreMismatch,
    StorageError,
    StoreNotFound,
    TargetExists,
    ToolFailed,
    ToolTooOld,
    WrongPassword,
)
from gocdbackup.model import (
    BackupCheck,
    BackupSet,
    BackupStatus,
    BlobProblem,
    Component,
    ConsistencyPoint,
    DamagedBlob,
    DatabaseInfo,
    GcPlan,
    Manifest,
    ProgressEvent,
    RestoreReport,
    RetentionPlan,
    RetentionPolicy,
    TableRows,
    VerifyReport,
)
from gocdbackup.model.cleanup import (
    CleanupPlan,
    CleanupResult,
    LeftAfterCleanup,
    left_after_cleanup,
    plan_cleanup,
    plan_recovery,
)
from gocdbackup.model.orphan_report import OrphanReport
from gocdbackup.model.orphans import OrphanClass
from gocdbackup.model.runbook import Outstanding, RunbookReport

__all__ = [
    "BackupCheck",
    "BackupList",
    "BackupNotFound",
    "BackupSet",
    "BackupStatus",
    "BlobProblem",
    "CancelToken",
    "Cancelled",
    "CleanupPlan",
    "CleanupResult",
    "Component",
    "ConfigError",
    "ConfirmationMismatch",
    "ConsistencyPoint",
    "DamagedBlob",
    "DatabaseInfo",
    "DriverError",
    "EmptyStore",
    "GcPlan",
    "GocdBackup",
    "GocdBackupError",
    "IntegrityError",
    "LeftAfterCleanup",
    "Manifest",
    "NotFound",
    "OpContext",
    "OrphanClass",
    "OrphanReport",
    "Outstanding",
    "PermissionDenied",
    "PostgresError",
    "PreconditionFailed",
    "ProgressEvent",
    "Reconciler",
    "RestoreMismatch",
    "RestoreReport",
    "RetentionPlan",
    "RetentionPolicy",
    "RunbookReport",
    "StorageError",
    "StoreNotFound",
    "TableRows",
    "TargetExists",
    "ToolFailed",
    "ToolTooOld",
    "VerifyReport",
    "WrongPassword",
    "left_after_cleanup",
    "load_report",
    "plan_cleanup",
    "plan_recovery",
    "save_report",
    "write_report_csv",
]
