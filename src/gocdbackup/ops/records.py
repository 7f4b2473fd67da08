"""What verifications and drills leave in the repository for ``status`` and the metrics: a
small sealed record each (best effort: a repository that cannot take one still verified or
drilled, and says so in the log)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from gocdbackup.errors import GocdBackupError
from gocdbackup.model.backup import BackupSet
from gocdbackup.model.status import Freshness, StatusReport, Thresholds
from gocdbackup.repository import Repository

log = logging.getLogger("gocdbackup.ops.records")

VERIFIES, DRILLS = "verifies", "drills"


def keep_record(repo: Repository, kind: str, at: datetime, document: dict[str, Any]) -> None:
    record_id = f"{at:%Y%m%dT%H%M%S%fZ}"
    try:
        repo.write_record(kind, record_id, json.dumps({"at": at.isoformat(), **document}).encode())
    except GocdBackupError as exc:
        log.warning("could not keep the %s record: %s", kind, exc)


def read_records(repo: Repository, kind: str) -> list[dict[str, Any]]:
    out = []
    for raw in repo.records(kind):
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("at"), str):
            out.append(doc)
    return out


def _last_ok(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    good = [r for r in records if r.get("ok")]
    return max(good, key=lambda r: str(r["at"])) if good else None


def protection_status(
    backups: list[BackupSet],
    verifies: list[dict[str, Any]],
    drills: list[dict[str, Any]],
    *,
    now: datetime,
    thresholds: Thresholds,
) -> StatusReport:
    """The newest of ``backups`` and the last successful of the ``verifies`` and ``drills``
    records (:func:`read_records`) against ``thresholds``."""
    newest = max(backups, key=lambda b: b.created_at, default=None)
    verified = _last_ok(verifies)
    drilled = _last_ok(drills)
    return StatusReport(
        now=now,
        items=(
            Freshness(
                what="backup",
                last=None if newest is None else newest.created_at,
                limit=thresholds.backup,
                detail="" if newest is None else newest.id,
            ),
            Freshness(
                what="verify",
                last=None if verified is None else datetime.fromisoformat(verified["at"]),
                limit=thresholds.verify,
            ),
            Freshness(
                what="drill",
                last=None if drilled is None else datetime.fromisoformat(drilled["at"]),
                limit=thresholds.drill,
                detail="" if drilled is None else str(drilled.get("backup_id", "")),
            ),
        ),
    )
