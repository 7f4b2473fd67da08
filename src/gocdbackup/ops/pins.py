"""Pins: a pinned backup is never forgotten by retention (e.g. a legal hold, a release)."""

from __future__ import annotations

import logging

import attrs

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError
from gocdbackup.model.backup import BackupSet
from gocdbackup.model.manifest import Manifest
from gocdbackup.repository import Repository

log = logging.getLogger("gocdbackup.ops.pins")


def pin_backup(repo: Repository, backup_id: str, *, reason: str, ctx: OpContext) -> BackupSet:
    """Pin ``backup_id`` with ``reason`` (replacing an earlier pin's reason)."""
    if not reason.strip():
        raise ConfigError("a pin needs a reason (e.g. 'legal hold', 'release 1.4')")
    with repo.lock("shared", "pin", ctx.clock):
        backup = attrs.evolve(repo.read_manifest(backup_id).backup, pin=reason.strip())
        repo.write_manifest(Manifest(backup=backup))
    log.info("pinned %s: %s", backup_id, reason)
    return backup


def unpin_backup(repo: Repository, backup_id: str, *, ctx: OpContext) -> BackupSet:
    """Remove the pin of ``backup_id`` (a backup without a pin is left as it is)."""
    with repo.lock("shared", "unpin", ctx.clock):
        backup = repo.read_manifest(backup_id).backup
        if backup.pin is None:
            return backup
        backup = attrs.evolve(backup, pin=None)
        repo.write_manifest(Manifest(backup=backup))
    log.info("unpinned %s", backup_id)
    return backup
