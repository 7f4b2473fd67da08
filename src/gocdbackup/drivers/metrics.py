"""Prometheus text-format metrics for node-exporter's textfile collector (written with
prometheus-client's atomic ``write_to_textfile``): when the last backup, verification and
drill succeeded, how big and how long, and what is overdue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from gocdbackup.errors import ConfigError
from gocdbackup.model.backup import BackupSet
from gocdbackup.model.status import StatusReport


def write_metrics(
    path: str,
    *,
    status: StatusReport,
    newest: BackupSet | None,
    backups: int,
    last_drill: dict[str, Any] | None,
    last_verify: dict[str, Any] | None = None,
) -> None:
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float, **labels: str) -> None:
        metric = Gauge(f"gocdbackup_{name}", doc, list(labels), registry=registry)
        (metric.labels(**labels) if labels else metric).set(value)

    gauge("backups", "Backups in the repository.", backups)
    for item in status.items:
        if item.last is not None:
            gauge(
                f"last_{item.what}_success_timestamp_seconds",
                f"When the last successful {item.what} happened (Unix time).",
                item.last.timestamp(),
            )
    overdue = Gauge(
        "gocdbackup_overdue", "1 when it is older than its limit.", ["what"], registry=registry
    )
    for item in status.items:
        overdue.labels(what=item.what).set(1.0 if item.overdue(status.now) else 0.0)
    if newest is not None:
        gauge("last_backup_size_bytes", "Logical size of the newest backup.", newest.size_bytes)
        gauge("last_backup_stored_bytes", "Bytes the newest backup added.", newest.stored_bytes)
        gauge(
            "last_backup_duration_seconds",
            "How long the newest backup took.",
            newest.timings.total_seconds,
        )
        counts = dict(newest.artifacts)
        if "total" in counts:
            gauge("last_backup_artifacts", "Objects the newest backup references.", counts["total"])
    if last_verify is not None and last_verify.get("seconds") is not None:
        gauge(
            "last_verify_duration_seconds",
            "How long the last verification took.",
            float(last_verify["seconds"]),
        )
    if last_drill is not None:
        gauge(
            "last_drill_ok", "1 when the last drill passed.", 1.0 if last_drill.get("ok") else 0.0
        )
        gauge(
            "last_drill_rto_seconds",
            "Time the last drill took to a checked working copy.",
            float(last_drill.get("rto_seconds") or 0.0),
        )
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(path, registry)
    except OSError as exc:
        raise ConfigError(f"cannot write the metrics file {path}: {exc.strerror or exc}") from None
