"""An artefact index in the repository: stored as a component of its backup, read back, and
the previous backup's index found for reuse."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable

from gocdbackup.context import OpContext
from gocdbackup.errors import GocdBackupError
from gocdbackup.model.artifacts import (
    ArtifactIndex,
)
from gocdbackup.model.backup import BackupSet, ChunkRef, Component
from gocdbackup.ops._components import checked_stream
from gocdbackup.repository import (
    Repository,
    chunk_stream,
    store_stream,
)
from gocdbackup.repository.journal import read_journals

log = logging.getLogger("gocdbackup.ops.artifact_index")

INDEX_KIND = "artifact_index"


# -- the index in the repository ----------------------------------------------------------------


def store_index(
    repo: Repository, index: ArtifactIndex, known: dict[str, int], ctx: OpContext
) -> Component:
    stream = io.BytesIO(index.to_jsonl())
    return store_stream(
        repo,
        chunk_stream(stream, repo.chunker),
        kind=INDEX_KIND,
        known=known,
        ctx=ctx,
        phase="index",
    )


def load_index(repo: Repository, backup: BackupSet, ctx: OpContext) -> ArtifactIndex | None:
    """The backup's artefact index, or None for a database-only backup."""
    for component in backup.components:
        if component.kind == INDEX_KIND:
            raw = b"".join(checked_stream(repo, component, ctx, phase="index"))
            return ArtifactIndex.from_jsonl(raw)
    return None


def artifact_chunks(repo: Repository, backup: BackupSet, ctx: OpContext) -> list[ChunkRef]:
    """The chunks of every object the backup's artefact index holds (each blob once)."""
    index = load_index(repo, backup, ctx)
    if index is None:
        return []
    return index.chunks()


def reusable_index(
    repo: Repository, backups: Iterable[BackupSet], ctx: OpContext
) -> tuple[ArtifactIndex | None, list[str]]:
    """What a new backup may reuse: the newest index, plus the journals interrupted backups
    left (and their ids, to delete once the new backup is committed)."""
    index = latest_index(repo, backups, ctx)
    ids, lines = read_journals(repo)
    if not lines:
        return index, ids
    journaled = ArtifactIndex.from_jsonl(lines).entries
    return ArtifactIndex(entries=(index.entries if index else ()) + journaled), ids


def latest_index(
    repo: Repository, backups: Iterable[BackupSet], ctx: OpContext
) -> ArtifactIndex | None:
    """The index of the newest backup that has one (what a nightly backup builds on)."""
    for backup in sorted(backups, key=lambda b: (b.created_at, b.id), reverse=True):
        try:
            index = load_index(repo, backup, ctx)
        except GocdBackupError as exc:
            log.warning("cannot reuse the artefact index of %s: %s", backup.id, exc)
            continue
        if index is not None:
            return index
    return None
