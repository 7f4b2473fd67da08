"""Reading the repository's list of backups."""

from __future__ import annotations

import logging

from gocdbackup.errors import GocdBackupError
from gocdbackup.model.backup import BackupSet
from gocdbackup.repository import Repository

log = logging.getLogger("gocdbackup.ops.catalog")


def list_backups(repo: Repository) -> list[BackupSet]:
    """Every committed backup, oldest first. Unreadable manifests are skipped with a warning
    (``verify_repository`` reports them)."""
    out = []
    for backup_id in repo.backup_ids():
        try:
            out.append(repo.read_manifest(backup_id).backup)
        except GocdBackupError as exc:
            log.warning("skipping backup %s: %s", backup_id, exc)
    return sorted(out, key=lambda b: (b.created_at, b.id))


def get_backup(repo: Repository, backup_id: str) -> BackupSet:
    return repo.read_manifest(backup_id).backup
