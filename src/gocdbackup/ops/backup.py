"""take_backup: one exported snapshot → pg_dump at that snapshot → repository → manifest."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import attrs

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError, IntegrityError
from gocdbackup.gocdnext.kube_secrets import NAME_TEMPLATE
from gocdbackup.model.archive_layout import LayoutScanner
from gocdbackup.model.artifacts import ArtifactIndex, Outcome
from gocdbackup.model.backup import BackupSet, BackupStatus, Component, DatabaseInfo, Timings
from gocdbackup.model.ids import make_backup_id
from gocdbackup.model.kube import VolumeSnapshotInfo
from gocdbackup.model.manifest import Manifest
from gocdbackup.ops.artifact_index import reusable_index, store_index
from gocdbackup.ops.artifacts import DEFAULT_WORKERS, backup_artifacts
from gocdbackup.ops.catalog import list_backups
from gocdbackup.ops.project_secrets import store_project_secrets
from gocdbackup.ops.secrets import sample_key_check
from gocdbackup.ports import (
    DumpStream,
    GocdnextData,
    ObjectListing,
    ObjectStore,
    Postgres,
    SecretStore,
    Snapshot,
)
from gocdbackup.repository import Repository, chunk_stream, store_stream
from gocdbackup.repository.journal import Journal, delete_journals

log = logging.getLogger("gocdbackup.ops.backup")

DUMP_KIND = "postgres_dump"
#: The dump's first bytes are a chunk of their own.  pg_dump's custom-format header (magic,
#: format version, the time the dump started, the database name, server and pg_dump versions)
#: is a few hundred bytes at most, and its timestamp lies in the first 50: without this cut it
#: would spoil the first content-defined chunk, which for a small database is the whole dump,
#: and a backup of an unchanged database would store everything again.  Chunk boundaries are
#: not part of the repository format: backups cut either way restore alike.
DUMP_HEAD_BYTES = 1024


def take_backup(
    repo: Repository,
    db: Postgres,
    *,
    ctx: OpContext,
    label: str = "",
    tool_version: str = "",
    artifacts: ObjectStore | None = None,
    gocdnext: GocdnextData | None = None,
    fail_on_missing: bool = False,
    transfers: int = DEFAULT_WORKERS,
    secret_key: bytes | None = None,
    project_secrets: SecretStore | None = None,
    secrets_template: str = NAME_TEMPLATE,
    volume_snapshot: VolumeSnapshotInfo | None = None,
    inventory: ObjectListing | None = None,
) -> BackupSet:
    """Back up ``db`` into ``repo``; the new :class:`BackupSet` once its manifest is committed.

    Nothing is listed unless every step succeeded: blobs are written first and the manifest
    last, so a failure, a cancellation or a crash leaves only unreferenced blobs behind.

    With ``artifacts`` (gocdnext's artefact store), the objects the snapshot's rows reference
    are copied too (see :func:`~gocdbackup.ops.artifacts.backup_artifacts`); a ready object
    missing from the store is a finding, or an error with ``fail_on_missing``.  Those rows are
    read through ``gocdnext`` (required with ``artifacts``), in the snapshot ``db`` exports,
    while it is held open.

    With ``secret_key`` (gocdnext's application key, read through ``gocdnext``), the manifest
    records the key's fingerprint and a sampled decrypt check of its sealed values.

    With ``project_secrets`` (the namespace of gocdnext's Kubernetes secrets backend), the
    Secrets named by ``secrets_template`` are stored in the backup, encrypted like the rest.
    ``volume_snapshot`` (a VolumeSnapshot of the artefact claim, taken by the caller) is
    recorded in the manifest.  ``inventory`` (a bucket inventory of ``artifacts``) stands in
    for listing the store.
    """
    if secret_key is not None and gocdnext is None:
        raise ConfigError(
            "checking the application key needs gocdnext= (GocdnextData: the sealed values); "
            "nothing was backed up"
        )
    if artifacts is not None and gocdnext is None:
        raise ConfigError(
            "backing up artefacts needs gocdnext= (GocdnextData: the rows that reference "
            f"the objects in {artifacts.url}); nothing was backed up"
        )
    key_check = (
        sample_key_check(gocdnext, secret_key)
        if secret_key is not None and gocdnext is not None
        else None
    )
    started = ctx.now()
    backup_id = make_backup_id(started, os.urandom(3).hex())
    log.info("backup %s of database %s started", backup_id, db.name)
    with repo.lock("shared", "backup", ctx.clock) as lock:
        known = repo.blob_sizes()
        with db.snapshot(ctx) as snap:
            point = snap.point()
            refs = (
                gocdnext.referenced_objects(snap.snapshot_id)
                if artifacts is not None and gocdnext is not None
                else []
            )
            database, component, dump_seconds = dump_database(repo, snap, known, ctx)
            # read in the same snapshot, still held (after the dump: pg_dump takes its locks
            # first, as it does without gocdnext's rows)
            newest = gocdnext.newest_run(snap.snapshot_id) if gocdnext is not None else None
        components = [component]
        counts: tuple[tuple[str, int], ...] = ()
        if artifacts is not None:
            assert gocdnext is not None  # refused above
            previous, consumed = reusable_index(repo, list_backups(repo), ctx)
            listed_at = ctx.now()
            index = backup_artifacts(
                repo,
                refs,
                artifacts,
                gocdnext,
                previous=previous,
                known=known,
                ctx=ctx,
                journal=Journal(repo, backup_id),
                workers=transfers,
                inventory=inventory,
            )
            missing = [e.ref.key for e in index.entries if e.outcome is Outcome.MISSING]
            if missing and fail_on_missing:
                raise IntegrityError(
                    f"{len(missing)} ready object(s) are missing from {artifacts.url}; "
                    "nothing was committed",
                    problems=missing,
                )
            components.append(store_index(repo, index, known, ctx))
            counts = tuple(index.counts().items())
            point = attrs.evolve(point, store_marker=store_marker(artifacts.url, listed_at, index))
        kube_secrets = None
        if project_secrets is not None:
            component, kube_secrets = store_project_secrets(
                repo, project_secrets, template=secrets_template, known=known, ctx=ctx
            )
            components.append(component)
        ctx.check()
        backup = BackupSet(
            id=backup_id,
            status=BackupStatus.DONE,
            label=label,
            point=point,
            database=database,
            components=tuple(components),
            artifacts=counts,
            key_check=key_check,
            kube_secrets=kube_secrets,
            volume_snapshot=volume_snapshot,
            newest_run=newest,
            timings=Timings(started_at=started, finished_at=ctx.now(), dump_seconds=dump_seconds),
            tool_version=tool_version,
        )
        lock.check()  # a lease lost while working means a GC may have run: do not commit
        repo.write_manifest(Manifest(backup=backup))  # the commit point
        if artifacts is not None:
            delete_journals(repo, [backup_id, *consumed])
    log.info(
        "backup %s done: %d bytes, %d stored, %.0f%% deduplicated",
        backup_id,
        backup.size_bytes,
        backup.stored_bytes,
        backup.dedup_ratio * 100,
    )
    return backup


def store_marker(url: str, listed_at: datetime, index: ArtifactIndex) -> str:
    """The artefact store's side of the consistency point: where, when it was read, and
    whether the index pins each object's version (versioned buckets, GCS generations)."""
    marker = f"{url} read from {listed_at.isoformat()}"
    versions = index.versions()
    if versions:
        marker += f"; {versions} object version ids in the artefact index"
    return marker


def dump_database(
    repo: Repository, snap: Snapshot, known: dict[str, int], ctx: OpContext
) -> tuple[DatabaseInfo, Component, float]:
    """Stream pg_dump at ``snap`` into ``repo`` while counting rows in the same snapshot."""
    database = snap.database()
    # the total is an estimate (table data without indexes); the last event is exact
    estimate = database.data_bytes or database.size_bytes
    ctx.report("dump", 0, estimate, message=f"dumping {database.name}")
    # on failure the counting thread is abandoned (leaving the snapshot cancels its query)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gocdbackup-count")
    try:
        counts = pool.submit(snap.count_rows)
        dump_started = ctx.now()
        scanner = LayoutScanner()
        with snap.dump(ctx) as stream:
            component = store_stream(
                repo,
                chunk_stream(_Scanned(stream, scanner), repo.chunker, head=DUMP_HEAD_BYTES),
                kind=DUMP_KIND,
                known=known,
                ctx=ctx,
                phase="dump",
                total_hint=estimate,
            )
        dump_seconds = (ctx.now() - dump_started).total_seconds()
        component = attrs.evolve(component, layout=scanner.finish())
        if component.layout is None:
            log.info("the dump restores as one stream: %s", scanner.why)
        ctx.report("dump", component.size_bytes, component.size_bytes)
        tables = counts.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return attrs.evolve(database, tables=tables), component, dump_seconds


class _Scanned:
    """A dump stream whose bytes also pass through a :class:`LayoutScanner` on their way."""

    def __init__(self, raw: DumpStream, scanner: LayoutScanner) -> None:
        self._raw = raw
        self._scanner = scanner

    def read(self, n: int = -1, /) -> bytes:
        data = self._raw.read(n)
        self._scanner.feed(data)
        return data

    def readinto(self, buf: memoryview) -> int:
        into = getattr(self._raw, "readinto", None)
        if into is None:
            data = self._raw.read(len(buf))
            buf[: len(data)] = data
            n = len(data)
        else:
            n = int(into(buf))
        self._scanner.feed(bytes(buf[:n]))
        return n
