"""copy_backup: a backup into a second repository (another bucket, region or provider), for
3-2-1. Chunks are decrypted from the source, re-encrypted with the target's keys, and written
only where the target lacks them; what was written is read back before the manifest commits."""

from __future__ import annotations

import logging

import attrs

from gocdbackup.context import OpContext
from gocdbackup.errors import IntegrityError
from gocdbackup.model.artifacts import ArtifactIndex
from gocdbackup.model.backup import BackupSet, ChunkRef, Component
from gocdbackup.model.copy import CopyResult
from gocdbackup.model.manifest import Manifest
from gocdbackup.ops._components import checked_stream, missing_chunks
from gocdbackup.ops.artifact_index import INDEX_KIND, load_index, store_index
from gocdbackup.repository import Repository, store_stream

log = logging.getLogger("gocdbackup.ops.copy")


def copy_backup(
    source: Repository, target: Repository, backup_id: str, *, ctx: OpContext
) -> CopyResult:
    """Copy ``backup_id`` from ``source`` to ``target`` (a no-op if the target has it)."""
    with (
        source.lock("shared", "copy", ctx.clock),
        target.lock("shared", "copy", ctx.clock) as target_lock,
    ):
        backup = source.read_manifest(backup_id).backup
        if backup_id in target.backup_ids():
            return CopyResult(
                backup=target.read_manifest(backup_id).backup,
                already_there=True,
                blobs_written=0,
                bytes_written=0,
            )
        known = target.blob_sizes()
        before = set(known)
        components = tuple(
            _copy_index(source, target, backup, known, ctx)
            if c.kind == INDEX_KIND
            else _copy_component(source, target, c, known, ctx)
            for c in backup.components
        )
        written = set(known) - before
        for n, blob_id in enumerate(sorted(written)):  # read back what was written
            ctx.check()
            target.get_blob(blob_id)
            ctx.report("copy-verify", n + 1, len(written), unit="blobs")
        copied = attrs.evolve(backup, components=components)
        target_lock.check()
        target.write_manifest(Manifest(backup=copied))
    log.info("copied backup %s to %s (%d new blobs)", backup_id, target.store.url, len(written))
    return CopyResult(
        backup=copied,
        already_there=False,
        blobs_written=len(written),
        bytes_written=sum(known[b] for b in written),
    )


def _copy_index(
    source: Repository,
    target: Repository,
    backup: BackupSet,
    known: dict[str, int],
    ctx: OpContext,
) -> Component:
    """The artefact objects' blobs, re-encrypted under the target's ids, and a rewritten index."""
    index = load_index(source, backup, ctx)
    assert index is not None
    renamed: dict[str, ChunkRef] = {}
    for ref in index.chunks():
        ctx.check()
        data = source.get_blob(ref.blob_id)
        new_id = target.codec.blob_id(data)
        if new_id not in known:
            known[new_id] = target.put_blob(new_id, data)
        renamed[ref.blob_id] = ChunkRef(
            blob_id=new_id, size_bytes=len(data), stored_bytes=known[new_id]
        )
    entries = tuple(
        attrs.evolve(e, chunks=tuple(renamed[c.blob_id] for c in e.chunks)) for e in index.entries
    )
    return store_index(target, ArtifactIndex(entries=entries), known, ctx)


def _copy_component(
    source: Repository,
    target: Repository,
    component: Component,
    known: dict[str, int],
    ctx: OpContext,
) -> Component:
    missing = missing_chunks(component.chunks, source.blob_sizes())
    if missing:
        raise IntegrityError(
            f"the source is damaged: {len(missing)} chunk(s) of {component.kind} missing",
            problems=[f"missing blob {m}" for m in missing],
        )
    copied = store_stream(
        target,
        checked_stream(source, component, ctx, phase="copy"),
        kind=component.kind,
        known=known,
        ctx=ctx,
        phase="copy",
        total_hint=component.size_bytes,
    )
    if (copied.size_bytes, copied.sha256) != (component.size_bytes, component.sha256):
        raise IntegrityError(f"the copy of {component.kind} does not match the source")
    return copied
