"""take_physical_backup: a base backup of the whole server streamed into the repository and
checked against its own manifest before the backup is committed.

The tar passes through :class:`~gocdbackup.model.base_backup.TarCheck` on its way into the
chunker: every file the manifest lists must arrive with its size and checksum, and the
manifest's own checksum must hold, as ``pg_verifybackup`` checks them; nothing of it is written
to local disk.  (``pg_verifybackup`` itself runs when the backup is laid down into a data
directory: it reads files, not a stream.)
"""

from __future__ import annotations

import io
import logging
import os

import attrs

from gocdbackup.context import OpContext
from gocdbackup.errors import IntegrityError
from gocdbackup.model.backup import BackupSet, BackupStatus, Timings
from gocdbackup.model.base_backup import TarCheck
from gocdbackup.model.ids import make_backup_id
from gocdbackup.model.manifest import Manifest
from gocdbackup.ports import BaseStream, PhysicalSource
from gocdbackup.repository import Repository, chunk_stream, read_stream, store_stream

log = logging.getLogger("gocdbackup.ops.physical")

BASE_KIND = "postgres_base"
#: the base backup's manifest on its own (an incremental backup builds on it)
BASE_MANIFEST_KIND = "postgres_base_manifest"


def base_manifest(repo: Repository, backup: BackupSet, ctx: OpContext) -> bytes:
    """The ``backup_manifest`` of physical backup ``backup``: its own component, or (backups
    taken before it was kept apart) read from the end of the tar."""
    kinds = {c.kind for c in backup.components}
    if BASE_MANIFEST_KIND in kinds:
        chunks = backup.component(BASE_MANIFEST_KIND).chunks
        return b"".join(read_stream(repo, chunks, ctx, phase="read manifest"))
    check = TarCheck()
    for data in read_stream(repo, backup.component(BASE_KIND).chunks, ctx, phase="read manifest"):
        check.feed(data)
    return check.manifest


def take_physical_backup(
    repo: Repository,
    source: PhysicalSource,
    *,
    ctx: OpContext,
    label: str = "",
    tool_version: str = "",
    parent: BackupSet | None = None,
) -> BackupSet:
    """Back up the server ``source`` names with pg_basebackup; the new :class:`BackupSet`
    (``method == "physical"``) once its manifest is committed.  Nothing is listed unless the
    stream matched its manifest.  With ``parent`` (a physical backup of the same server), an
    incremental one: only what changed since ``parent``, restored together with it."""
    prior = None if parent is None else base_manifest(repo, parent, ctx)
    started = ctx.now()
    backup_id = make_backup_id(started, os.urandom(3).hex())
    log.info("physical backup %s of the server of %s started", backup_id, source.name)
    check = TarCheck()
    with repo.lock("shared", "backup", ctx.clock) as lock:
        known = repo.blob_sizes()
        with source.base_backup(prior) as stream:
            component = store_stream(
                repo,
                chunk_stream(_Checked(stream, check), repo.chunker),
                kind=BASE_KIND,
                known=known,
                ctx=ctx,
                phase="base backup",
            )
            tool = stream.tool_version
        result = check.finish()
        if not result.ok:
            raise IntegrityError(
                f"the base backup does not match its manifest ({len(result.problems)} "
                "problem(s)); nothing was committed",
                problems=list(result.problems),
            )
        if not result.wal_ranges:
            raise IntegrityError(
                "the base backup's manifest has no WAL range; nothing was committed"
            )
        last = result.wal_ranges[-1]
        point, database = source.physical_facts(
            end_lsn=last.end_lsn, timeline=last.timeline, tool_version=tool
        )
        point = attrs.evolve(
            point, snapshot_id=f"base backup from {result.wal_ranges[0].start_lsn}"
        )
        manifest = store_stream(
            repo,
            chunk_stream(io.BytesIO(check.manifest), repo.chunker),
            kind=BASE_MANIFEST_KIND,
            known=known,
            ctx=ctx,
            phase="base backup",
        )
        ctx.check()
        backup = BackupSet(
            id=backup_id,
            status=BackupStatus.DONE,
            label=label,
            point=point,
            database=database,
            components=(component, manifest),
            parent=None if parent is None else parent.id,
            timings=Timings(
                started_at=started,
                finished_at=ctx.now(),
                dump_seconds=(ctx.now() - started).total_seconds(),
            ),
            tool_version=tool_version,
        )
        lock.check()
        repo.write_manifest(Manifest(backup=backup))
    log.info(
        "physical backup %s done: %d files, %d bytes, consistent at %s",
        backup_id,
        result.files,
        backup.size_bytes,
        point.wal_lsn,
    )
    return backup


class _Checked:
    """The base backup's stream, also fed to a :class:`TarCheck` on its way."""

    def __init__(self, raw: BaseStream, check: TarCheck) -> None:
        self._raw = raw
        self._check = check

    def read(self, n: int = -1, /) -> bytes:
        data = self._raw.read(n)
        self._check.feed(data)
        return data
