"""One exception tree, rooted at :class:`GocdBackupError`.

Every error a user can meet carries a one-line, secret-free ``str()`` and, where it helps,
structured fields.  Drivers translate vendor exceptions into these classes and chain the cause
(``raise ... from exc``), so ``__cause__`` keeps the details for ``--debug`` without leaking
them into messages.
"""

from __future__ import annotations

from collections.abc import Sequence


class GocdBackupError(Exception):
    """Base class of every error gocdbackup raises on purpose."""

    #: a short, stable, machine-readable name (used by ``--json`` error output)
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# -- configuration and input --------------------------------------------------------------------


class ConfigError(GocdBackupError):
    """Bad input or configuration: the call cannot proceed as asked."""

    code = "config"


class WrongPassword(ConfigError):
    """No key slot of the repository opens with the given passphrase or key file."""

    code = "wrong_password"


class RepositoryExists(ConfigError):
    """``init`` was pointed at a location that already holds data."""

    code = "repository_exists"


class UnsupportedFormat(ConfigError):
    """A manifest or repository config is malformed or of a format this version cannot read."""

    code = "unsupported_format"


# -- preconditions -----------------------------------------------------------------------------


class PreconditionFailed(GocdBackupError):
    """The world is not in the state the operation requires; nothing was changed."""

    code = "precondition"


class ConfirmationMismatch(PreconditionFailed):
    """A destructive call was made without the right ``confirm=`` value."""

    code = "confirmation_mismatch"


class KeyMismatch(PreconditionFailed):
    """The application key given is not the one a backup was taken with."""

    code = "key_mismatch"


class TargetExists(PreconditionFailed):
    """The restore target already exists and replacing it was not asked for."""

    code = "target_exists"


class ReportMismatch(PreconditionFailed):
    """An orphan report (or plan) was made for another database or store, or is too old to
    act on: scan again."""

    code = "report_mismatch"


class ToolTooOld(PreconditionFailed):
    """No suitable ``pg_dump``/``pg_restore`` was found for the server or archive version."""

    code = "tool_too_old"


# -- not found ---------------------------------------------------------------------------------


class NotFound(GocdBackupError):
    """A named thing does not exist."""

    code = "not_found"


class RepositoryNotFound(NotFound):
    code = "repository_not_found"


class BackupNotFound(NotFound):
    code = "backup_not_found"

    def __init__(self, backup_id: str) -> None:
        super().__init__(f"no backup {backup_id!r} in this repository")
        self.backup_id = backup_id


class DatabaseNotFound(NotFound):
    code = "database_not_found"

    #: the SQLSTATE PostgreSQL reported (``3D000``), when the error came from a server
    sqlstate: str | None = None


# -- drivers -----------------------------------------------------------------------------------


class DriverError(GocdBackupError):
    """An external system (storage, PostgreSQL) failed."""

    code = "driver"


class StorageError(DriverError):
    code = "storage"


class TransientStorageError(StorageError):
    """A storage failure worth retrying (throttling, 5xx, connection reset)."""

    code = "storage_transient"


class PostgresError(DriverError):
    code = "postgres"

    #: the SQLSTATE PostgreSQL reported, when the error came from a server (``None`` for a
    #: connection that never reached one, or a failure of a tool or of the client)
    sqlstate: str | None = None


class DatabaseUnreachable(PostgresError):
    code = "database_unreachable"


class AuthenticationFailed(PostgresError):
    code = "authentication_failed"


class PermissionDenied(PostgresError):
    """The role lacks a privilege the operation needs (SQLSTATE 42501)."""

    code = "permission_denied"


class ToolFailed(PostgresError):
    """``pg_dump``/``pg_restore`` exited non-zero or was killed."""

    code = "tool_failed"

    def __init__(
        self,
        tool: str,
        returncode: int | None,
        stderr_tail: str,
        *,
        messages: Sequence[str] | None = None,
    ) -> None:
        how = "was killed" if returncode is not None and returncode < 0 else f"exited {returncode}"
        if messages is None:
            tail = stderr_tail.strip().splitlines()[-1:] if stderr_tail.strip() else []
            detail = f": {tail[0]}" if tail else ""
        else:  # the tool's messages, one line each, in the order it wrote them
            detail = f": {'; '.join(messages)}" if messages else ""
        super().__init__(f"{tool} {how}{detail}")
        self.tool = tool
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        #: what the tool wrote to stderr, one line per message (empty unless the caller split it)
        self.messages = tuple(messages or ())


# -- data --------------------------------------------------------------------------------------


class KubernetesError(DriverError):
    """The Kubernetes API refused or failed a request."""

    code = "kubernetes"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        #: the HTTP status the API server answered with (None: no answer)
        self.status = status


class KubernetesForbidden(KubernetesError):
    """The API server refused the request (401 or 403): the credentials or their RBAC role
    lack a permission."""

    code = "kubernetes_forbidden"


class VolumeSnapshotFailed(KubernetesError):
    """The CSI snapshot controller reported an error for a VolumeSnapshot (or it never became
    ready)."""

    code = "volume_snapshot_failed"


class KubernetesNotFound(KubernetesError):
    """A named Kubernetes object (or its namespace) does not exist."""

    code = "kubernetes_not_found"


class IntegrityError(GocdBackupError):
    """Stored data is missing, corrupt or does not match what was recorded."""

    code = "integrity"

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class RestoreMismatch(IntegrityError):
    """The restored database differs from what the manifest recorded."""

    code = "restore_mismatch"


class WalConflict(IntegrityError):
    """A WAL file of this name is archived already, with other content."""

    code = "wal_conflict"


class OutOfOrder(IntegrityError):
    """A stream of keys (a store listing, the database's keys) was not in ascending order:
    classifying it could call a referenced object an orphan, so the scan stopped."""

    code = "out_of_order"


class ScanInterrupted(GocdBackupError):
    """An orphan scan stopped before the end; ``report`` holds what was classified so far
    (``complete=False``, with the cursor a resumed scan continues from)."""

    code = "scan_interrupted"

    def __init__(self, message: str, report: object) -> None:
        super().__init__(message)
        self.report = report


class DrillFailed(GocdBackupError):
    """A restore drill found a problem; ``report`` (a ``DrillReport``) says which check and
    why."""

    code = "drill_failed"

    def __init__(self, message: str, *, report: object) -> None:
        super().__init__(message)
        self.report = report


class Cancelled(GocdBackupError):
    """The operation was cancelled; it cleaned up after itself."""

    code = "cancelled"


class StoreNotFound(NotFound):
    """An artefact store location (a directory, a bucket) that does not exist."""

    code = "store_not_found"


class VersioningOff(PreconditionFailed):
    """A point-in-time operation on a store that keeps no versions to roll back to."""

    code = "versioning_off"


class ShardsMissing(PreconditionFailed):
    """A detached backup cannot be committed: some of its shards (``missing``) are not done."""

    code = "shards_missing"

    def __init__(self, message: str, missing: list[int]) -> None:
        super().__init__(message)
        self.missing, self.problems = missing, [f"shard {n} is not done" for n in missing]


class InventoryMismatch(PreconditionFailed):
    """A bucket inventory that does not describe the artefact store it was given for."""

    code = "inventory_mismatch"


class EmptyStore(PreconditionFailed):
    """Rows would be retired against a store that holds no object at all; that needs the
    caller's word that the store is empty on purpose."""

    code = "empty_store"


class WalMissing(NotFound):
    """No WAL file of that name is in the archive (what a restore_command reports at the end
    of the archive, and for a timeline's history that was never written)."""

    code = "wal_missing"


class ObjectMissing(NotFound):
    """A key is absent from an object store."""

    code = "object_missing"

    def __init__(self, key: str) -> None:
        super().__init__(f"object {key!r} does not exist")
        self.key = key


# -- the application key's escrow ----------------------------------------------------------------


class EscrowLocked(ConfigError):
    """An escrow of the application key does not open with the passphrase or private key
    given (a wrong secret, or a recipient the escrow was not written for)."""

    code = "escrow_locked"


class EscrowDamaged(IntegrityError):
    """An escrow envelope was altered or is corrupt: the right secret opens its slot, but the
    sealed key, its header or its fingerprint do not authenticate."""

    code = "escrow_damaged"


class EscrowMismatch(ConfigError):
    """An escrow holds another key than the one asked for (its fingerprint differs)."""

    code = "escrow_mismatch"


class PaperFormError(ConfigError):
    """A paper form of the application key does not read back: ``line`` is the line of the
    text (1-based) where the problem is, where there is one; ``label`` the paper line's
    label (``"3"`` for the third line of the key, ``"fingerprint"``, ...).  The message names
    the line, never what it holds."""

    code = "paper_form"

    def __init__(self, message: str, *, line: int | None = None, label: str = "") -> None:
        super().__init__(message)
        self.line = line
        self.label = label


#: every error class above (all derive from GocdBackupError)
__all__ = sorted(  # noqa: PLE0605 - built from the classes, so none is ever left out
    name
    for name, value in dict(globals()).items()
    if isinstance(value, type) and issubclass(value, GocdBackupError)
)
