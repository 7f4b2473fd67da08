"""gocdbackup: consistent, encrypted, verifiable backups of a gocdnext installation.

Start with :class:`GocdBackup`::

    from gocdbackup import GocdBackup
    gb = GocdBackup.init("file:///srv/backups/gocdnext", password="…")
    backup = gb.backup("postgresql://gocdnext@db/gocdnext", label="nightly")
"""

from gocdbackup._facade import BackupList, GocdBackup
from gocdbackup._reconciler import Reconciler
from gocdbackup.context import CancelToken, OpContext
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
from gocdbackup.model.cleanup import CleanupPlan, CleanupResult, plan_cleanup
from gocdbackup.model.orphan_report import OrphanReport
from gocdbackup.model.orphans import OrphanClass

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
    "Manifest",
    "NotFound",
    "OpContext",
    "OrphanClass",
    "OrphanReport",
    "PermissionDenied",
    "PostgresError",
    "PreconditionFailed",
    "ProgressEvent",
    "Reconciler",
    "RestoreMismatch",
    "RestoreReport",
    "RetentionPlan",
    "RetentionPolicy",
    "StorageError",
    "StoreNotFound",
    "TableRows",
    "TargetExists",
    "ToolFailed",
    "ToolTooOld",
    "VerifyReport",
    "WrongPassword",
    "plan_cleanup",
]
