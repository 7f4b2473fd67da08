"""gocdbackup: consistent, encrypted, verifiable backups of a gocdnext installation.

Start with :class:`GocdBackup`::

    from gocdbackup import GocdBackup
    gb = GocdBackup.init("file:///srv/backups/gocdnext", password="…")
    backup = gb.backup("postgresql://gocdnext@db/gocdnext", label="nightly")
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from gocdbackup._secrets import (
        check_project_secrets,
        check_secrets,
        key_fingerprint,
        rotate_key,
    )
    from gocdbackup._status import drill_history, metrics, status
    from gocdbackup._store_pit import audit_store, restore_store_to_time
    from gocdbackup._time_restore import restore_to_time
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

#: where each public name lives: imported on first use, so that ``import gocdbackup``
#: (and every ``gocdbackup.x`` submodule, e.g. the WAL hooks PostgreSQL runs per segment)
#: costs milliseconds, not the second that PostgreSQL, Kubernetes and cloud clients take
_LAZY: dict[str, tuple[str, str]] = {
    "audit_store": ("gocdbackup._store_pit", "audit_store"),
    "restore_store_to_time": ("gocdbackup._store_pit", "restore_store_to_time"),
    "restore_to_time": ("gocdbackup._time_restore", "restore_to_time"),
    "BackupCheck": ("gocdbackup.model", "BackupCheck"),
    "BackupList": ("gocdbackup.model.backup", "BackupList"),
    "BackupNotFound": ("gocdbackup.errors", "BackupNotFound"),
    "BackupSet": ("gocdbackup.model", "BackupSet"),
    "BackupStatus": ("gocdbackup.model", "BackupStatus"),
    "BlobProblem": ("gocdbackup.model", "BlobProblem"),
    "CancelToken": ("gocdbackup.context", "CancelToken"),
    "Cancelled": ("gocdbackup.errors", "Cancelled"),
    "CleanupPlan": ("gocdbackup.model.cleanup", "CleanupPlan"),
    "CleanupResult": ("gocdbackup.model.cleanup", "CleanupResult"),
    "Component": ("gocdbackup.model", "Component"),
    "ConfigError": ("gocdbackup.errors", "ConfigError"),
    "ConfirmationMismatch": ("gocdbackup.errors", "ConfirmationMismatch"),
    "ConsistencyPoint": ("gocdbackup.model", "ConsistencyPoint"),
    "DamagedBlob": ("gocdbackup.model", "DamagedBlob"),
    "DatabaseInfo": ("gocdbackup.model", "DatabaseInfo"),
    "DrillFailed": ("gocdbackup.errors", "DrillFailed"),
    "DrillReport": ("gocdbackup.model.drill", "DrillReport"),
    "DriverError": ("gocdbackup.errors", "DriverError"),
    "EmptyStore": ("gocdbackup.errors", "EmptyStore"),
    "EscrowDamaged": ("gocdbackup.errors", "EscrowDamaged"),
    "EscrowEntry": ("gocdbackup.model.escrow_results", "EscrowEntry"),
    "EscrowLocked": ("gocdbackup.errors", "EscrowLocked"),
    "EscrowMismatch": ("gocdbackup.errors", "EscrowMismatch"),
    "EscrowResult": ("gocdbackup.model.escrow_results", "EscrowResult"),
    "GcPlan": ("gocdbackup.model", "GcPlan"),
    "GocdBackup": ("gocdbackup._facade", "GocdBackup"),
    "GocdBackupError": ("gocdbackup.errors", "GocdBackupError"),
    "IntegrityError": ("gocdbackup.errors", "IntegrityError"),
    "KeyMismatch": ("gocdbackup.errors", "KeyMismatch"),
    "KubeSecret": ("gocdbackup.model.project_secrets", "KubeSecret"),
    "KubernetesError": ("gocdbackup.errors", "KubernetesError"),
    "KubernetesForbidden": ("gocdbackup.errors", "KubernetesForbidden"),
    "KubernetesNotFound": ("gocdbackup.errors", "KubernetesNotFound"),
    "LeftAfterCleanup": ("gocdbackup.model.cleanup", "LeftAfterCleanup"),
    "Manifest": ("gocdbackup.model", "Manifest"),
    "NotFound": ("gocdbackup.errors", "NotFound"),
    "OpContext": ("gocdbackup.context", "OpContext"),
    "OrphanClass": ("gocdbackup.model.orphans", "OrphanClass"),
    "OrphanReport": ("gocdbackup.model.orphan_report", "OrphanReport"),
    "Outstanding": ("gocdbackup.model.runbook", "Outstanding"),
    "PaperFormError": ("gocdbackup.errors", "PaperFormError"),
    "PermissionDenied": ("gocdbackup.errors", "PermissionDenied"),
    "PostgresError": ("gocdbackup.errors", "PostgresError"),
    "PreconditionFailed": ("gocdbackup.errors", "PreconditionFailed"),
    "ProgressEvent": ("gocdbackup.model", "ProgressEvent"),
    "ProjectSecretsCheck": ("gocdbackup.model.project_secrets", "ProjectSecretsCheck"),
    "Reconciler": ("gocdbackup._reconciler", "Reconciler"),
    "RecoveredKey": ("gocdbackup.model.escrow_results", "RecoveredKey"),
    "RestoreMismatch": ("gocdbackup.errors", "RestoreMismatch"),
    "RestoreReport": ("gocdbackup.model", "RestoreReport"),
    "RetentionPlan": ("gocdbackup.model", "RetentionPlan"),
    "RetentionPolicy": ("gocdbackup.model", "RetentionPolicy"),
    "RotationReport": ("gocdbackup.model.rotation", "RotationReport"),
    "RunbookReport": ("gocdbackup.model.runbook", "RunbookReport"),
    "SecretsCheck": ("gocdbackup.model.secrets", "SecretsCheck"),
    "SecretsRestore": ("gocdbackup.model.project_secrets", "SecretsRestore"),
    "StorageError": ("gocdbackup.errors", "StorageError"),
    "StoreNotFound": ("gocdbackup.errors", "StoreNotFound"),
    "TableRows": ("gocdbackup.model", "TableRows"),
    "TargetExists": ("gocdbackup.errors", "TargetExists"),
    "ToolFailed": ("gocdbackup.errors", "ToolFailed"),
    "ToolTooOld": ("gocdbackup.errors", "ToolTooOld"),
    "VerifyReport": ("gocdbackup.model", "VerifyReport"),
    "VolumeSnapshotFailed": ("gocdbackup.errors", "VolumeSnapshotFailed"),
    "WalReport": ("gocdbackup.model.wal", "WalReport"),
    "WalStreamReport": ("gocdbackup._wal_stream", "WalStreamReport"),
    "WrongPassword": ("gocdbackup.errors", "WrongPassword"),
    "check_project_secrets": ("gocdbackup._secrets", "check_project_secrets"),
    "check_secrets": ("gocdbackup._secrets", "check_secrets"),
    "drill_history": ("gocdbackup._status", "drill_history"),
    "escrow_key": ("gocdbackup._escrow", "escrow_key"),
    "generate_recipient": ("gocdbackup.model.escrow_keys", "generate_recipient"),
    "key_fingerprint": ("gocdbackup._secrets", "key_fingerprint"),
    "kube_postgres": ("gocdbackup._kube", "kube_postgres"),
    "kube_secret_key": ("gocdbackup._kube", "kube_secret_key"),
    "kube_secrets": ("gocdbackup._kube", "kube_secrets"),
    "left_after_cleanup": ("gocdbackup.model.cleanup", "left_after_cleanup"),
    "list_escrows": ("gocdbackup._escrow", "list_escrows"),
    "load_report": ("gocdbackup.drivers.report_files", "load_report"),
    "metrics": ("gocdbackup._status", "metrics"),
    "physical_backup": ("gocdbackup._pitr", "physical_backup"),
    "plan_cleanup": ("gocdbackup.model.cleanup", "plan_cleanup"),
    "plan_recovery": ("gocdbackup.model.cleanup", "plan_recovery"),
    "quiesce": ("gocdbackup._kube", "quiesce"),
    "quiesced": ("gocdbackup._kube", "quiesced"),
    "recover_key": ("gocdbackup._escrow", "recover_key"),
    "release_secret_key": ("gocdbackup._kube", "release_secret_key"),
    "restore_physical": ("gocdbackup._pitr", "restore_physical"),
    "resume": ("gocdbackup._kube", "resume"),
    "rotate_key": ("gocdbackup._secrets", "rotate_key"),
    "run_drill": ("gocdbackup._drill", "run_drill"),
    "save_recipient": ("gocdbackup._escrow", "save_recipient"),
    "save_report": ("gocdbackup.drivers.report_files", "save_report"),
    "snapshot_artifacts": ("gocdbackup._kube", "snapshot_artifacts"),
    "status": ("gocdbackup._status", "status"),
    "stream_wal": ("gocdbackup._wal_stream", "stream_wal"),
    "volume_snapshots": ("gocdbackup._kube", "volume_snapshots"),
    "wal_fetch": ("gocdbackup._pitr", "wal_fetch"),
    "wal_push": ("gocdbackup._pitr", "wal_push"),
    "wal_verify": ("gocdbackup._pitr", "wal_verify"),
    "write_report_csv": ("gocdbackup.drivers.report_files", "write_report_csv"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'gocdbackup' has no attribute {name!r}") from None
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
    "audit_store",
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
    "restore_store_to_time",
    "restore_to_time",
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
