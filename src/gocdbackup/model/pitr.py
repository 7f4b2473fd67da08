"""What a point-in-time recovery did: from which base backup, to which target, and where
recovery actually stopped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from attrs import frozen

from gocdbackup.errors import PreconditionFailed
from gocdbackup.model.render import kv_table


@frozen(kw_only=True)
class RecoveryTarget:
    """A time (aware) or an LSN; neither: the end of the WAL archive."""

    time: datetime | None = None
    lsn: str | None = None

    def settings(self) -> dict[str, str]:
        """PostgreSQL's recovery_target_* settings for it."""
        if self.time is not None:
            return {"recovery_target_time": self.time.astimezone(UTC).isoformat()}
        if self.lsn is not None:
            return {"recovery_target_lsn": self.lsn}
        return {}

    def describe(self) -> str:
        if self.time is not None:
            return self.time.astimezone(UTC).isoformat()
        return f"LSN {self.lsn}" if self.lsn is not None else "the end of the WAL archive"


def check_target(
    target: RecoveryTarget, *, backup_id: str, consistent_at: datetime, now: datetime
) -> None:
    """A target a base backup consistent at ``consistent_at`` can reach, or
    :class:`PreconditionFailed` saying why not (nothing is touched)."""
    if target.time is not None and target.lsn is not None:
        raise PreconditionFailed("give a target time or a target LSN, not both; nothing was done")
    if target.time is None:
        return
    if target.time.tzinfo is None:
        raise PreconditionFailed(
            "the target time needs a UTC offset (e.g. 2026-11-30T14:03:27+00:00); nothing was done"
        )
    if target.time < consistent_at:
        raise PreconditionFailed(
            f"{target.describe()} is before backup {backup_id} is consistent "
            f"({consistent_at.isoformat()}): recover from an older base backup; nothing was done"
        )
    if target.time > now:
        raise PreconditionFailed(
            f"{target.describe()} is in the future (now {now.isoformat()}); nothing was done"
        )


@frozen(kw_only=True)
class PhysicalRestoreReport:
    backup_id: str
    pgdata: str
    target: str
    #: the commit time of the last transaction recovery replayed (None: none after the backup)
    recovered_to: datetime | None
    lsn: str
    timeline: int
    goose_version: int | None
    tables_checked: int
    rows_checked: int
    files: int
    seconds: float
    #: forensics: the database the recovered one was restored into, through this logical
    #: backup of it (kept in the repository)
    database: str | None = None
    logical_backup: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "pgdata": self.pgdata,
            "target": self.target,
            "recovered_to": None if self.recovered_to is None else self.recovered_to.isoformat(),
            "lsn": self.lsn,
            "timeline": self.timeline,
            "goose_version": self.goose_version,
            "tables_checked": self.tables_checked,
            "rows_checked": self.rows_checked,
            "files": self.files,
            "seconds": round(self.seconds, 3),
            **(
                {"database": self.database, "logical_backup": self.logical_backup}
                if self.database is not None
                else {}
            ),
        }

    def _repr_html_(self) -> str:
        return kv_table(self.summary().items(), caption=f"Recovery of {self.backup_id}")


@frozen(kw_only=True)
class TimeRestoreReport:
    """Database and artefact bucket brought to one instant (``restore_to_time``): the plan
    (``dry_run``), or what was done, and the orphan scan of the pair afterwards."""

    id: str
    at: datetime
    backup_id: str
    #: the bucket's plan (``PitPlan.to_dict()``)
    store_plan: dict[str, Any]
    dry_run: bool = True
    database: PhysicalRestoreReport | None = None
    #: steps carried out in the bucket, by action, and the keys that failed with the reason
    store_done: dict[str, int] | None = None
    store_failed: dict[str, str] | None = None
    #: the orphan scan of the pair afterwards: its counts by class, and its id
    orphan_counts: dict[str, int] | None = None
    orphan_report: str | None = None

    @property
    def missing_objects(self) -> int:
        return (self.orphan_counts or {}).get("missing_object", 0)

    @property
    def clean(self) -> bool:
        """Done, every key rolled, and no row of the recovered database lacks its object."""
        return (
            not self.dry_run
            and not self.store_failed
            and self.orphan_counts is not None
            and self.missing_objects == 0
        )

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.at.isoformat(),
            "backup_id": self.backup_id,
            "dry_run": self.dry_run,
            "store_plan": self.store_plan,
            "database": None if self.database is None else self.database.summary(),
            "store_done": self.store_done,
            "store_failed": [
                {"key": k, "reason": v} for k, v in sorted((self.store_failed or {}).items())
            ],
            "orphans": self.orphan_counts,
            "orphan_report": self.orphan_report,
            "clean": self.clean,
        }
