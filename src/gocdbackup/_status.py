"""How current the protection is, from Python: the newest backup, the last successful
verification and drill against their limits, and the same as Prometheus metrics."""

from __future__ import annotations

from typing import Any

from gocdbackup._facade import GocdBackup
from gocdbackup.drivers.metrics import write_metrics
from gocdbackup.model.status import StatusReport, Thresholds
from gocdbackup.ops.records import DRILLS, VERIFIES, protection_status, read_records


def status(gb: GocdBackup, *, thresholds: Thresholds | None = None) -> StatusReport:
    """The age of the newest backup, of the last successful verification and of the last
    successful drill, each against ``thresholds`` (26 h, 8 d, 92 d by default)."""
    backups = list(gb.list_backups())
    return protection_status(
        gb.repository, backups, now=gb.context().now(), thresholds=thresholds or Thresholds()
    )


def drill_history(gb: GocdBackup) -> list[dict[str, Any]]:
    """Every drill's report summary kept in the repository, oldest first (``ok``,
    ``backup_id``, ``checks``, ``timings``, ``rto_seconds``, ``rpo_seconds``, ``at``...)."""
    return sorted(read_records(gb.repository, DRILLS), key=lambda r: str(r["at"]))


def metrics(gb: GocdBackup, path: str, *, thresholds: Thresholds | None = None) -> StatusReport:
    """Write Prometheus metrics (text format, for node-exporter's textfile collector) to
    ``path``; the status they show."""
    report = status(gb, thresholds=thresholds)
    backups = list(gb.list_backups())
    drills = read_records(gb.repository, DRILLS)
    verifies = read_records(gb.repository, VERIFIES)
    write_metrics(
        path,
        status=report,
        newest=max(backups, key=lambda b: b.created_at, default=None),
        backups=len(backups),
        last_drill=max(drills, key=lambda r: str(r["at"])) if drills else None,
        last_verify=max(verifies, key=lambda r: str(r["at"])) if verifies else None,
    )
    return report
