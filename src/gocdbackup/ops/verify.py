"""verify_repository: structure check of every manifest, and read-back of a sample of data."""

from __future__ import annotations

import logging
import random

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError, GocdBackupError
from gocdbackup.model.backup import BackupSet, ChunkRef, Component
from gocdbackup.model.verify import BackupCheck, VerifyReport
from gocdbackup.ops._components import checked_stream, missing_chunks, wrong_size_chunks
from gocdbackup.ops.artifacts import artifact_chunks
from gocdbackup.repository import Repository

log = logging.getLogger("gocdbackup.ops.verify")


def verify_repository(
    repo: Repository,
    *,
    ctx: OpContext,
    backup_id: str | None = None,
    read_data_percent: float = 0.0,
    seed: int | None = None,
) -> VerifyReport:
    """Check that every manifest (or just ``backup_id``'s) parses and that every blob it needs
    exists; read back ``read_data_percent`` % of the chunks (decrypt + hash).  At 100 % every
    component's whole-stream SHA-256 is checked too.  Damage is reported per backup, never raised.
    """
    if not 0.0 <= read_data_percent <= 100.0:
        raise ConfigError(f"read-data must be between 0 and 100 %, got {read_data_percent}")
    with repo.lock("shared", "verify", ctx.clock):
        return _verify(repo, ctx, backup_id, read_data_percent, seed)


def _verify(
    repo: Repository,
    ctx: OpContext,
    backup_id: str | None,
    read_data_percent: float,
    seed: int | None,
) -> VerifyReport:
    ids = [backup_id] if backup_id is not None else repo.backup_ids()
    if backup_id is not None:
        repo.read_manifest(backup_id)  # BackupNotFound before anything else
    stored = repo.blob_sizes()
    rng = random.Random(seed)  # noqa: S311 - sampling, not cryptography
    checks = []
    problems: list[str] = []
    for n, bid in enumerate(ids):
        ctx.check()
        ctx.report("verify", n, len(ids), unit="backups", message=bid)
        try:
            backup = repo.read_manifest(bid).backup
        except GocdBackupError as exc:
            problems.append(f"backup {bid}: manifest unreadable: {exc}")
            continue
        checks.append(_check_backup(repo, backup, stored, read_data_percent, rng, ctx))
    ctx.report("verify", len(ids), len(ids), unit="backups")
    return VerifyReport(
        checks=tuple(checks), read_data_percent=read_data_percent, problems=tuple(problems)
    )


def _check_backup(  # noqa: PLR0917
    repo: Repository,
    backup: BackupSet,
    stored: dict[str, int],
    percent: float,
    rng: random.Random,
    ctx: OpContext,
) -> BackupCheck:
    problems: list[str] = []
    chunks = read = 0
    parts: list[tuple[str, list[ChunkRef], Component | None]] = [
        (c.kind, list(c.chunks), c) for c in backup.components
    ]
    try:
        parts.append(("artifacts", artifact_chunks(repo, backup, ctx), None))
    except GocdBackupError as exc:
        problems.append(f"artefact index unreadable: {exc}")
    for kind, refs, component in parts:
        chunks += len(refs)
        missing = missing_chunks(refs, stored)
        if missing:
            problems.append(f"{len(missing)} blob(s) missing from {kind}")
            continue
        resized = wrong_size_chunks(refs, stored)
        if resized:
            problems.append(f"{len(resized)} blob(s) of the wrong size in {kind}")
        if percent >= 100.0 and component is not None:
            try:
                for _ in checked_stream(repo, component, ctx, phase="read"):
                    read += 1
            except GocdBackupError as exc:
                problems.append(str(exc))
            continue
        unique = sorted({c.blob_id for c in refs})
        sample = rng.sample(unique, k=round(len(unique) * percent / 100.0)) if percent else []
        unreadable = 0
        for blob_id in sample:
            ctx.check()
            try:
                repo.get_blob(blob_id)
            except GocdBackupError as exc:
                log.debug("blob %s unreadable: %s", blob_id, exc)
                unreadable += 1
            read += 1
        if unreadable:
            problems.append(f"{unreadable} blob(s) unreadable in {kind}")
    return BackupCheck(
        backup_id=backup.id, chunks=chunks, chunks_read=read, problems=tuple(problems)
    )
