"""``GocdBackup``: the small facade that wires drivers into the use cases. No logic of its own."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs

from gocdbackup import ops
from gocdbackup._key_slots import KeySlots
from gocdbackup._wiring import (
    __version__,
    artifact_store,
    inventory_of,
    postgres_server,
    store_of,
    versions_of,
)
from gocdbackup.context import CancelToken, Clock, OpContext, ProgressSink, SystemClock
from gocdbackup.credentials import (
    application_key,
    given_key,
    resolve_password,
)
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.postgres import GocdnextTables, PostgresServer
from gocdbackup.errors import ConfigError
from gocdbackup.gocdnext import cipher as gocdnext_cipher
from gocdbackup.gocdnext.kube_secrets import NAME_TEMPLATE
from gocdbackup.gocdnext.storage import DEFAULT_FS_ROOT
from gocdbackup.model.artifacts import ArtifactIndex, ArtifactRestore
from gocdbackup.model.backup import BackupList, BackupSet
from gocdbackup.model.copy import CopyResult
from gocdbackup.model.gc import GcResult
from gocdbackup.model.kube import VolumeSnapshotInfo
from gocdbackup.model.project_secrets import SecretsRestore
from gocdbackup.model.restore import RestoreReport
from gocdbackup.model.retention import RetentionPlan, RetentionPolicy
from gocdbackup.model.secrets import SecretsCheck
from gocdbackup.model.verify import VerifyReport
from gocdbackup.ops import secrets
from gocdbackup.ops.artifact_index import load_index
from gocdbackup.ops.artifact_restore import restore_artifacts, select
from gocdbackup.ops.copy import copy_backup
from gocdbackup.ops.discovery import discover_artifact_store
from gocdbackup.ops.gc import DEFAULT_GRACE, collect_garbage
from gocdbackup.ops.project_secrets import restore_project_secrets
from gocdbackup.ops.retention import apply_retention, plan_retention
from gocdbackup.ops.version_restore import restore_from_versions
from gocdbackup.ports import GocdnextData, ObjectStore, Postgres, SecretStore
from gocdbackup.repository import ChunkerParams, Repository
from gocdbackup.repository.keys import DEFAULT_SCRYPT_N
from gocdbackup.repository.locks import remove_stale


class GocdBackup(KeySlots):
    """One repository, ready for backups, restores and checks.

    >>> gb = GocdBackup("s3://backups/gocdnext", password_file="/run/secrets/repo-pass")
    >>> backup = gb.backup("postgresql://gocdnext@db/gocdnext", label="nightly")
    >>> gb.restore(backup.id, "postgresql://postgres@staging/gocdnext", confirm=backup.id)
    """

    def __init__(
        self,
        repo: str | ObjectStore,
        *,
        password: str | bytes | None = None,
        password_file: str | Path | None = None,
        storage_options: dict[str, Any] | None = None,
        progress: ProgressSink | None = None,
        clock: Clock | None = None,
        pg_bindir: str | None = None,
        restore_settings: dict[str, str] | None = None,
        transfers: int = 8,
        artifact_options: dict[str, Any] | None = None,
    ) -> None:
        self._store = FsspecStore(repo, storage_options) if isinstance(repo, str) else repo
        #: fsspec storage options for artefact-store URLs (e.g. ``{"version_aware": True}``)
        self.artifact_options = dict(artifact_options or {})
        self._password = resolve_password(password, password_file)
        self._progress = progress
        self._clock = clock or SystemClock()
        self._pg_bindir = pg_bindir
        self._restore_settings = restore_settings
        if transfers < 1:
            raise ConfigError("transfers must be at least 1")
        #: artefact objects copied or restored at once
        self.transfers = transfers
        self._repo: Repository | None = None
        self.cancel_token = CancelToken()

    def __repr__(self) -> str:
        return f"<GocdBackup {self._store.url}>"

    @classmethod
    def init(
        cls,
        repo: str | ObjectStore,
        *,
        password: str | bytes | None = None,
        password_file: str | Path | None = None,
        storage_options: dict[str, Any] | None = None,
        chunker: ChunkerParams | None = None,
        scrypt_n: int = DEFAULT_SCRYPT_N,
        **kw: Any,
    ) -> GocdBackup:
        """Create a new, empty, encrypted repository and return it opened."""
        gb = cls(
            repo,
            password=password,
            password_file=password_file,
            storage_options=storage_options,
            **kw,
        )
        gb._repo = Repository.init(
            gb._store, gb._password, now=gb._clock.now(), chunker=chunker, scrypt_n=scrypt_n
        )
        return gb

    @property
    def repository(self) -> Repository:
        if self._repo is None:
            self._repo = Repository.open(self._store, self._password)
        return self._repo

    @property
    def url(self) -> str:
        return self._store.url

    def context(self) -> OpContext:
        return OpContext.using(self._progress, cancel=self.cancel_token, clock=self._clock)

    def database(self, dsn: str | Postgres) -> Postgres:
        """The :class:`~gocdbackup.ports.Postgres` server ``dsn`` names (a libpq DSN), or
        ``dsn`` itself if it is one already."""
        if not isinstance(dsn, str):
            return dsn
        return self._server(dsn)

    def _server(self, dsn: str) -> PostgresServer:
        return postgres_server(dsn, bindir=self._pg_bindir, restore_settings=self._restore_settings)

    def _gocdnext_data(self, db: str | GocdnextData) -> GocdnextData:
        """gocdnext's rows (:class:`~gocdbackup.ports.GocdnextData`) in the database ``db``
        names (a libpq DSN), or ``db`` itself if it is that already."""
        return GocdnextTables(self._server(db)) if isinstance(db, str) else db

    # -- use cases ---------------------------------------------------------------------------

    def backup(
        self,
        db: str | Postgres,
        *,
        label: str = "",
        artifacts: str | ObjectStore | None = None,
        fail_on_missing: bool = False,
        secret_key: str | None = None,
        secret_key_file: str | None = None,
        gocdnext: GocdnextData | None = None,
        project_secrets: SecretStore | None = None,
        secrets_template: str = NAME_TEMPLATE,
        volume_snapshot: VolumeSnapshotInfo | None = None,
        listing: str | None = None,
    ) -> BackupSet:
        """A consistent backup of the database ``db`` names (a DSN) and, with ``artifacts`` (an
        fsspec URL of gocdnext's artefact store, or ``"auto"``: from its ``platform_settings``
        with the key from ``secret_key``, ``secret_key_file`` or ``GOCDNEXT_SECRET_KEY``), of
        the objects its rows reference, at the same point in time (rows read from ``db``, or
        ``gocdnext`` for another :class:`~gocdbackup.ports.Postgres`).  ``project_secrets``
        (:func:`gocdbackup.kube_secrets`) keeps the Kubernetes backend's Secrets (named by
        ``secrets_template``) in it; ``volume_snapshot`` is recorded in it.  ``listing`` (the
        URL of a bucket inventory's manifest) is read instead of listing the artefact store."""
        database = self.database(db)
        if gocdnext is None and isinstance(database, PostgresServer):
            gocdnext = GocdnextTables(database)
        store: ObjectStore | None
        if artifacts == "auto":
            if gocdnext is None:
                raise ConfigError(
                    "artifacts='auto' reads the store's setting through gocdnext= "
                    "(GocdnextData), which was not given; nothing was backed up"
                )
            store = self.discover_artifacts(
                gocdnext, secret_key=secret_key, secret_key_file=secret_key_file
            )
        else:
            store = artifact_store(artifacts, self.artifact_options)
        key = given_key(secret_key, secret_key_file)
        return ops.take_backup(
            self.repository,
            database,
            ctx=self.context(),
            label=label,
            tool_version=__version__(),
            artifacts=store,
            gocdnext=gocdnext,
            fail_on_missing=fail_on_missing,
            transfers=self.transfers,
            secret_key=key if gocdnext is not None else None,
            project_secrets=project_secrets,
            secrets_template=secrets_template,
            volume_snapshot=volume_snapshot,
            inventory=(
                None if listing is None else inventory_of(listing, store, self.artifact_options)
            ),
        )

    def discover_artifacts(
        self,
        db: str | GocdnextData,
        *,
        secret_key: str | None = None,
        secret_key_file: str | None = None,
    ) -> ObjectStore:
        """gocdnext's artefact store as its ``platform_settings['artifacts.storage']`` row
        describes it (filesystem root from ``GOCDNEXT_ARTIFACTS_FS_ROOT``, else the default)."""
        key = application_key(env=secret_key, file=secret_key_file)
        location = discover_artifact_store(
            self._gocdnext_data(db),
            gocdnext_cipher.decryptor(key),
            fs_root=os.environ.get("GOCDNEXT_ARTIFACTS_FS_ROOT", DEFAULT_FS_ROOT),
        )
        return FsspecStore(location.url, {**location.options, **self.artifact_options})

    def list_backups(self) -> BackupList:
        return BackupList(ops.list_backups(self.repository))

    def __iter__(self) -> Iterator[BackupSet]:
        return iter(self.list_backups())

    def get_backup(self, backup_id: str) -> BackupSet:
        return ops.get_backup(self.repository, backup_id)

    def restore(
        self,
        backup_id: str,
        db: str | Postgres,
        *,
        confirm: str,
        replace: bool = False,
        target: str | None = None,
        artifacts: str | ObjectStore | None = None,
        secret_key: str | None = None,
        secret_key_file: str | None = None,
        project_secrets: SecretStore | None = None,
        jobs: int | None = None,
        store_from_versions: bool = False,
    ) -> RestoreReport:
        """Restore ``backup_id`` into the database ``db`` names (created if absent; an existing
        one needs ``replace=True``); ``confirm`` repeats the backup id.  With ``artifacts``,
        the backup's objects are written back into that store first (with
        ``store_from_versions``, made current again from the bucket's own versions where it
        keeps them).  ``jobs`` tables load at a time (default: the cores).  With gocdnext's key
        (``secret_key``, ``secret_key_file`` or ``$GOCDNEXT_SECRET_KEY``) another key than the
        backup's is refused before anything is touched, and the restored sealed values are
        checked (``RestoreReport.secrets``).  ``project_secrets``: the backup's project
        Secrets are written into that namespace once the database is restored."""
        key = given_key(secret_key, secret_key_file)
        if key is not None:
            secrets.check_backup_key(self.get_backup(backup_id), key)
        database = self.database(db)
        check: Callable[[str], SecretsCheck] | None = None
        if key is not None and isinstance(database, PostgresServer):
            server, sealed_with = database, key

            def check(staging: str) -> SecretsCheck:
                data = GocdnextTables(server.database_named(staging))
                return secrets.check_secrets(data, sealed_with, ctx=self.context())

        report = ops.restore_backup(
            self.repository,
            database,
            backup_id,
            confirm=confirm,
            ctx=self.context(),
            target=target,
            replace=replace,
            artifacts=store_of(artifacts, self.artifact_options),
            transfers=self.transfers,
            check_secrets=check,
            jobs=jobs,
            versions=versions_of(artifacts, self.artifact_options) if store_from_versions else None,
        )
        if project_secrets is None:
            return report
        written = self.restore_project_secrets(
            backup_id, project_secrets, dry_run=False, confirm=confirm
        )
        return attrs.evolve(report, kube_secrets=written)

    def restore_project_secrets(
        self,
        backup_id: str,
        to: SecretStore,
        *,
        dry_run: bool = True,
        confirm: str | None = None,
    ) -> SecretsRestore:
        """Write the backup's project Secrets into ``to``'s namespace (create or replace); a
        dry run unless ``confirm`` repeats the backup id."""
        return restore_project_secrets(
            self.repository,
            self.get_backup(backup_id),
            to,
            ctx=self.context(),
            dry_run=dry_run,
            confirm=confirm,
        )

    def artifact_index(self, backup_id: str) -> ArtifactIndex | None:
        """What the backup holds of the artefact store (None for a database-only backup)."""
        return load_index(self.repository, self.get_backup(backup_id), self.context())

    def restore_artifacts(
        self,
        backup_id: str,
        artifacts: str | ObjectStore,
        *,
        project: str | None = None,
        pipeline: str | None = None,
        run: str | None = None,
        prefix: str | None = None,
        from_versions: bool = False,
    ) -> ArtifactRestore:
        """Write back the backup's objects (or those of one project, pipeline, run or key
        prefix) into ``artifacts``, e.g. after someone deleted a release's artefacts; with
        ``from_versions``, made current again from the bucket's own versions where it keeps
        the version the backup recorded (server-side, no bytes copied)."""
        index = self.artifact_index(backup_id)
        if index is None:
            raise ConfigError(f"backup {backup_id} was taken without artefacts")
        store = store_of(artifacts, self.artifact_options)
        assert store is not None
        only = select(project=project, pipeline=pipeline, run=run, prefix=prefix)
        if from_versions:
            bucket = versions_of(artifacts, self.artifact_options)
            return restore_from_versions(
                self.repository, index, bucket, store, ctx=self.context(), only=only
            )
        return restore_artifacts(
            self.repository, index, store, ctx=self.context(), only=only, workers=self.transfers
        )

    def verify(self, backup_id: str | None = None, *, read_data: float = 0.0) -> VerifyReport:
        """Structure check of every backup (or one); read back ``read_data`` % of the data."""
        return ops.verify_repository(
            self.repository, ctx=self.context(), backup_id=backup_id, read_data_percent=read_data
        )

    def copy(self, backup_id: str, to: GocdBackup) -> CopyResult:
        """Copy a backup into another repository (opened as ``to``), re-encrypted with its keys."""
        return copy_backup(self.repository, to.repository, backup_id, ctx=self.context())

    def plan_retention(self, policy: RetentionPolicy) -> RetentionPlan:
        """What ``policy`` would keep and forget now, with reasons (changes nothing)."""
        return plan_retention(self.repository, policy, now=self._clock.now())

    def apply_retention(self, plan: RetentionPlan, *, confirm: str) -> tuple[str, ...]:
        """Forget exactly the backups ``plan`` forgets (``confirm`` repeats ``plan.id``)."""
        return apply_retention(self.repository, plan, confirm=confirm, ctx=self.context())

    # -- maintenance -------------------------------------------------------------------------

    def gc(self, *, grace: timedelta = DEFAULT_GRACE, dry_run: bool = True) -> GcResult:
        """Delete blobs no backup references, older than ``grace`` (a dry run by default)."""
        return collect_garbage(self.repository, ctx=self.context(), grace=grace, dry_run=dry_run)

    def unlock_stale(self) -> list[str]:
        """Remove expired (and unreadable) lock files; live locks are never touched."""
        return remove_stale(self.repository.store, self._clock.now())

    # -- pins (key slots: :class:`~gocdbackup._key_slots.KeySlots`) -----------------------------

    def pin(self, backup_id: str, *, reason: str) -> BackupSet:
        """Keep ``backup_id`` whatever the retention policy says."""
        return ops.pin_backup(self.repository, backup_id, reason=reason, ctx=self.context())

    def unpin(self, backup_id: str) -> BackupSet:
        return ops.unpin_backup(self.repository, backup_id, ctx=self.context())
