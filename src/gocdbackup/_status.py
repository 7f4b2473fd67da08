"""How current the protection is, from Python: the newest backup, the last successful
verification and drill against their limits, and the same as Prometheus metrics."""

from __future__ import annotations

from typing import Any

from gocdbackup._facade import GocdBackup
from gocdbackup.drivers.metrics import write_metrics
from gocdbackup.model.backup import BackupSet
from gocdbackup.model.status import StatusReport, Thresholds
from gocdbackup.ops.records import DRILLS, VERIFIES, protection_status, read_records


def _newest(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(records, key=lambda r: str(r["at"])) if records else None


def status(gb: GocdBackup, *, thresholds: Thresholds | None = None) -> StatusReport:
    """The age of the newest backup, of the last successful verification and of the last
    successful drill, each against ``thresholds`` (26 h, 8 d, 92 d by default)."""
    return _status(gb, thresholds)[0]


def _status(
    gb: GocdBackup, thresholds: Thresholds | None
) -> tuple[StatusReport, list[BackupSet], list[dict[str, Any]], list[dict[str, Any]]]:
    """The status, and what it was read from (each read once): backups, verifies, drills."""
    backups = list(gb.list_backups())
    verifies = read_records(gb.repository, VERIFIES)
    drills = read_records(gb.repository, DRILLS)
    report = protection_status(
        backups,
        verifies,
        drills,
        now=gb.context().now(),
        thresholds=thresholds or Thresholds(),
    )
    return report, backups, verifies, drills


def drill_history(gb: GocdBackup) -> list[dict[str, Any]]:
    """Every drill's report summary kept in the repository, oldest first (``ok``,
    ``backup_id``, ``checks``, ``timings``, ``rto_seconds``, ``rpo_seconds``, ``at``...)."""
    return sorted(read_records(gb.repository, DRILLS), key=lambda r: str(r["at"]))


def metrics(gb: GocdBackup, path: str, *, thresholds: Thresholds | None = None) -> StatusReport:
    """Write Prometheus metrics (text format, for node-exporter's textfile collector) to
    ``path``; the status they show."""
    report, backups, verifies, drills = _status(gb, thresholds)
    write_metrics(
        path,
        status=report,
        newest=max(backups, key=lambda b: b.created_at, default=None),
        backups=len(backups),
        last_drill=_newest(drills),
        last_verify=_newest(verifies),
    )
    return report
