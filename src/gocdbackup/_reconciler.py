"""``Reconciler``: the facade for orphan reconciliation between gocdnext's database and its
artefact store (no repository needed, except to recover missing objects from backups)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from gocdbackup._facade import GocdBackup
from gocdbackup._scan_shards import ScanSpec, scan_sharded
from gocdbackup._wiring import inventory_of, postgres_server
from gocdbackup.context import CancelToken, Clock, OpContext, ProgressSink, SystemClock
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.postgres import GocdnextTables
from gocdbackup.drivers.report_files import TempFileRows
from gocdbackup.errors import ConfigError
from gocdbackup.model.cleanup import (
    CleanupPlan,
    CleanupResult,
    RecoverResult,
    UndoResult,
    plan_cleanup,
    plan_recovery,
)
from gocdbackup.model.durations import parse_duration
from gocdbackup.model.orphan_report import OrphanReport
from gocdbackup.model.orphans import OrphanClass
from gocdbackup.model.runbook import RunbookReport
from gocdbackup.ops import cleanup, orphans, recovery, runbooks
from gocdbackup.ops import quarantine as quarantine_ops
from gocdbackup.ports import GocdnextData, ObjectListing, ObjectStore
from gocdbackup.repository import Repository


def _duration(value: str | timedelta) -> timedelta:
    return value if isinstance(value, timedelta) else parse_duration(value)


def _repository(source: GocdBackup | Repository) -> Repository:
    return source.repository if isinstance(source, GocdBackup) else source


class Reconciler:
    """One gocdnext database and its artefact store, compared and put back in agreement.

    >>> rec = Reconciler("postgresql://gocdnext@db/gocdnext", "s3://gocdnext-artifacts")
    >>> report = rec.scan(grace="6h")             # read-only
    >>> plan = rec.plan(report)                   # orphan objects, partial uploads
    >>> done = rec.clean(plan, confirm=plan.id)   # quarantined; rec.undo(done.id) puts back
    """

    def __init__(
        self,
        db: str | GocdnextData,
        artifacts: str | ObjectStore,
        *,
        artifact_options: dict[str, Any] | None = None,
        quarantine: str | ObjectStore | None = None,
        progress: ProgressSink | None = None,
        clock: Clock | None = None,
        pg_bindir: str | None = None,
        transfers: int = 8,
    ) -> None:
        self.db: GocdnextData = (
            GocdnextTables(postgres_server(db, bindir=pg_bindir)) if isinstance(db, str) else db
        )
        #: how a worker process opens the same database and store (sharded scans)
        self._spec = ScanSpec(
            db=db if isinstance(db, str) else None,
            artifacts=artifacts if isinstance(artifacts, str) else None,
            options=dict(artifact_options or {}),
            pg_bindir=pg_bindir,
        )
        options = self._spec.options
        self.store = FsspecStore(artifacts, options) if isinstance(artifacts, str) else artifacts
        self.quarantine = (
            FsspecStore(quarantine, options) if isinstance(quarantine, str) else quarantine
        )
        self._progress = progress
        self._clock = clock or SystemClock()
        self.transfers = transfers
        self.cancel_token = CancelToken()

    def __repr__(self) -> str:
        return f"<Reconciler {self.db.name!r} {self.store.url}>"

    def context(self) -> OpContext:
        return OpContext.using(self._progress, cancel=self.cancel_token, clock=self._clock)

    # -- the report ---------------------------------------------------------------------------

    def scan(
        self,
        *,
        grace: str | timedelta = orphans.DEFAULT_GRACE,
        verify_content: float = 0.0,
        rate_limit: float | None = None,
        resume: OrphanReport | None = None,
        listing: str | ObjectListing | None = None,
        shards: int = 1,
    ) -> OrphanReport:
        """The two-way report (read-only); see :func:`gocdbackup.ops.orphans.scan_orphans`.

        ``listing``: the URL of a bucket inventory's manifest (S3 Inventory ``manifest.json``,
        a GCS inventory report's manifest), read instead of listing the bucket.
        ``shards``: scan that many key ranges in as many worker processes (each listing only
        its range) and merge their reports into one; see :func:`scan_sharded`."""
        if shards > 1:
            if resume is not None:
                raise ConfigError("a sharded scan cannot resume a report: scan again")
            if listing is not None and not isinstance(listing, str):
                raise ConfigError("a sharded scan takes the inventory by its URL")
            return scan_sharded(
                self._spec,
                self.db,
                shards,
                ctx=self.context(),
                grace=_duration(grace),
                verify_content=verify_content,
                rate_limit=rate_limit,
                listing=listing,
            )
        return orphans.scan_orphans(
            self.db,
            self.store,
            ctx=self.context(),
            grace=_duration(grace),
            verify_content=verify_content,
            rate_limit=rate_limit,
            resume=resume,
            rows_buffer=TempFileRows,
            listing=self.inventory(listing) if isinstance(listing, str) else listing,
        )

    def inventory(self, manifest_url: str) -> ObjectListing:
        """The bucket inventory whose manifest is at ``manifest_url``, checked against the
        artefact store (read with the artefact store's options)."""
        return inventory_of(manifest_url, self.store, self._spec.options)

    @staticmethod
    def plan(
        report: OrphanReport,
        classes: Iterable[OrphanClass | str] | None = None,
        *,
        rows: bool = False,
    ) -> CleanupPlan:
        """What a cleanup would touch (pure); see :func:`gocdbackup.model.cleanup.plan_cleanup`."""
        return plan_cleanup(report, classes, rows=rows)

    # -- objects without rows -------------------------------------------------------------------

    def clean(
        self,
        plan: CleanupPlan,
        *,
        confirm: str,
        mode: str = "quarantine",
        dry_run: bool = False,
        max_report_age: str | timedelta = cleanup.MAX_REPORT_AGE,
    ) -> CleanupResult:
        return cleanup.clean_orphans(
            plan,
            self.store,
            self.db,
            ctx=self.context(),
            confirm=confirm,
            mode=mode,
            quarantine=self.quarantine,
            dry_run=dry_run,
            max_report_age=_duration(max_report_age),
            workers=self.transfers,
        )

    def undo(self, cleanup_id: str) -> UndoResult:
        return quarantine_ops.undo_cleanup(
            cleanup_id, self.store, ctx=self.context(), quarantine=self.quarantine
        )

    def cleanups(self) -> list[dict[str, Any]]:
        return quarantine_ops.list_cleanups(self.quarantine or self.store)

    def purge_quarantine(
        self, older_than: str | timedelta, *, confirm: str | None = None
    ) -> dict[str, Any]:
        return quarantine_ops.purge_quarantine(
            self.quarantine or self.store,
            ctx=self.context(),
            older_than=_duration(older_than),
            confirm=confirm,
        )

    # -- rows without objects -------------------------------------------------------------------

    def recover_missing(
        self, plan: CleanupPlan, from_repo: GocdBackup | Repository
    ) -> RecoverResult:
        return recovery.recover_missing(
            plan, _repository(from_repo), self.store, ctx=self.context(), workers=self.transfers
        )

    @staticmethod
    def plan_recovery(report: OrphanReport) -> CleanupPlan:
        """Every ready row without its object, whatever its age (pure); see
        :func:`gocdbackup.model.cleanup.plan_recovery`."""
        return plan_recovery(report)

    def retire_missing(
        self, plan: CleanupPlan, *, confirm: str, allow_empty_store: bool = False
    ) -> dict[str, int]:
        return recovery.retire_missing(
            plan,
            self.db,
            self.store,
            ctx=self.context(),
            confirm=confirm,
            allow_empty_store=allow_empty_store,
        )

    # -- the runbooks ---------------------------------------------------------------------------

    def lost_bucket(
        self,
        from_repo: GocdBackup | Repository,
        *,
        grace: str | timedelta = orphans.DEFAULT_GRACE,
        confirm: str | None = None,
        allow_empty_store: bool = False,
    ) -> RunbookReport:
        return runbooks.lost_bucket(
            self.db,
            self.store,
            _repository(from_repo),
            ctx=self.context(),
            grace=_duration(grace),
            confirm=confirm,
            allow_empty_store=allow_empty_store,
            rows_buffer=TempFileRows,
        )

    def lost_database(
        self,
        *,
        grace: str | timedelta = orphans.DEFAULT_GRACE,
        confirm: str | None = None,
        mode: str = "quarantine",
    ) -> RunbookReport:
        return runbooks.lost_database(
            self.db,
            self.store,
            ctx=self.context(),
            grace=_duration(grace),
            confirm=confirm,
            mode=mode,
            quarantine=self.quarantine,
            rows_buffer=TempFileRows,
        )
