"""gocdbackup: consistent, encrypted, verifiable backups of a gocdnext installation.

Start with :class:`GocdBackup`::

    from gocdbackup import GocdBackup
    gb = GocdBackup.init("file:///srv/backups/gocdnext", password="…")
    backup = gb.backup("postgresql://gocdnext@db/gocdnext", label="nightly")
"""

from gocdbackup._facade import BackupList, GocdBackup
from gocdbackup.context import CancelToken, OpContext
from gocdbackup.errors import (
    BackupNotFound,
    Cancelled,
    ConfigError,
    ConfirmationMismatch,
    DriverError,
    GocdBackupError,
    IntegrityError,
    NotFound,
    PostgresError,
    PreconditionFailed,
    RestoreMismatch,
    StorageError,
    TargetExists,
    ToolFailed,
    ToolTooOld,
    WrongPassword,
)
from gocdbackup.model import (
    BackupCheck,
    BackupSet,
    BackupStatus,
    Component,
    ConsistencyPoint,
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

__all__ = [
    "BackupCheck",
    "BackupList",
    "BackupNotFound",
    "BackupSet",
    "BackupStatus",
    "CancelToken",
    "Cancelled",
    "Component",
    "ConfigError",
    "ConfirmationMismatch",
    "ConsistencyPoint",
    "DatabaseInfo",
    "DriverError",
    "GcPlan",
    "GocdBackup",
    "GocdBackupError",
    "IntegrityError",
    "Manifest",
    "NotFound",
    "OpContext",
    "PostgresError",
    "PreconditionFailed",
    "ProgressEvent",
    "RestoreMismatch",
    "RestoreReport",
    "RetentionPlan",
    "RetentionPolicy",
    "StorageError",
    "TableRows",
    "TargetExists",
    "ToolFailed",
    "ToolTooOld",
    "VerifyReport",
    "WrongPassword",
]
