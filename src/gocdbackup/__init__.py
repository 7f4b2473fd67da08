"""gocdbackup: consistent, encrypted, verifiable backups of a gocdnext installation.

Start with :class:`GocdBackup`::

    from gocdbackup import GocdBackup
    gb = GocdBackup.init("file:///srv/backups/gocdnext", password="…")
    backup = gb.backup("postgresql://gocdnext@db/gocdnext", label="nightly")
"""

from gocdbackup._drill import run_drill
from gocdbackup._escrow import escrow_key, list_escrows, recover_key, save_recipient
from gocdbackup._facade import GocdBackup
from gocdbackup._kube import (
    kube_postgres,
    kube_secret_key,
    kube_secrets,
    quiesce,
    quiesced,
    release_secret_key,
    resume,
    snapshot_artifacts,
    volume_snapshots,
)
from gocdbackup._pitr import (
    physical_backup,
    restore_physical,
    wal_fetch,
    wal_push,
    wal_verify,
)
from gocdbackup._reconciler import Reconciler
from gocdbackup._secrets import check_project_secrets, check_secrets, key_fingerprint, rotate_key
from gocdbackup._status import drill_history, metrics, status
from gocdbackup._wal_stream import WalStreamReport, stream_wal
from gocdbackup.context import CancelToken, OpContext
from gocdbackup.drivers.report_files import load_report, save_report, write_report_csv
from gocdbackup.errors import (
    BackupNotFound,
    Cancelled,
    ConfigError,
    ConfirmationMismatch,
    DrillFailed,
    DriverError,
    EmptyStore,
    EscrowDamaged,
    EscrowLocked,
    EscrowMismatch,
    GocdBackupError,
    IntegrityError,
    KeyMismatch,
    KubernetesError,
    KubernetesForbidden,
    KubernetesNotFound,
    NotFound,
    PaperFormError,
    PermissionDenied,
    PostgresError,
    PreconditionFailed,
    RestoreMismatch,
    StorageError,
    StoreNotFound,
    TargetExists,
    ToolFailed,
    ToolTooOld,
    VolumeSnapshotFailed,
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
from gocdbackup.model.backup import BackupList
from gocdbackup.model.cleanup import (
    CleanupPlan,
    CleanupResult,
    LeftAfterCleanup,
    left_after_cleanup,
    plan_cleanup,
    plan_recovery,
)
from gocdbackup.model.drill import DrillReport
from gocdbackup.model.escrow_keys import generate_recipient
from gocdbackup.model.escrow_results import EscrowEntry, EscrowResult, RecoveredKey
from gocdbackup.model.orphan_report import OrphanReport
from gocdbackup.model.orphans import OrphanClass
from gocdbackup.model.project_secrets import KubeSecret, ProjectSecretsCheck, SecretsRestore
from gocdbackup.model.rotation import RotationReport
from gocdbackup.model.runbook import Outstanding, RunbookReport
from gocdbackup.model.secrets import SecretsCheck
from gocdbackup.model.wal import WalReport

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
    "DrillFailed",
    "DrillReport",
    "DriverError",
    "EmptyStore",
    "EscrowDamaged",
    "EscrowEntry",
    "EscrowLocked",
    "EscrowMismatch",
    "EscrowResult",
    "GcPlan",
    "GocdBackup",
    "GocdBackupError",
    "IntegrityError",
    "KeyMismatch",
    "KubeSecret",
    "KubernetesError",
    "KubernetesForbidden",
    "KubernetesNotFound",
    "LeftAfterCleanup",
    "Manifest",
    "NotFound",
    "OpContext",
    "OrphanClass",
    "OrphanReport",
    "Outstanding",
    "PaperFormError",
    "PermissionDenied",
    "PostgresError",
    "PreconditionFailed",
    "ProgressEvent",
    "ProjectSecretsCheck",
    "Reconciler",
    "RecoveredKey",
    "RestoreMismatch",
    "RestoreReport",
    "RetentionPlan",
    "RetentionPolicy",
    "RotationReport",
    "RunbookReport",
    "SecretsCheck",
    "SecretsRestore",
    "StorageError",
    "StoreNotFound",
    "TableRows",
    "TargetExists",
    "ToolFailed",
    "ToolTooOld",
    "VerifyReport",
    "VolumeSnapshotFailed",
    "WalReport",
    "WalStreamReport",
    "WrongPassword",
    "check_project_secrets",
    "check_secrets",
    "drill_history",
    "escrow_key",
    "generate_recipient",
    "key_fingerprint",
    "kube_postgres",
    "kube_secret_key",
    "kube_secrets",
    "left_after_cleanup",
    "list_escrows",
    "load_report",
    "metrics",
    "physical_backup",
    "plan_cleanup",
    "plan_recovery",
    "quiesce",
    "quiesced",
    "recover_key",
    "release_secret_key",
    "restore_physical",
    "resume",
    "rotate_key",
    "run_drill",
    "save_recipient",
    "save_report",
    "snapshot_artifacts",
    "status",
    "stream_wal",
    "volume_snapshots",
    "wal_fetch",
    "wal_push",
    "wal_verify",
    "write_report_csv",
]
