"""A backup whose artefact copy is split into shards that separate processes (or the pods of a
Kubernetes Indexed Job) carry out: :func:`start_detached` dumps the database and writes the
shard plan (the backup is not listed yet), :func:`run_shard` copies one shard's objects and
records its part of the index, :func:`finish_shards` commits the backup once every shard is
done, or names the shards still missing.

Everything lives in the repository: the plan as a sealed record (``records/pending/<id>``),
each shard's refs and results as components of their own, and each shard's journal, so a
worker killed mid-copy is simply run again and copies nothing twice.  Garbage collection
counts the blobs of pending backups as referenced (:func:`pending_blobs`)."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator

import attrs

from gocdbackup.context import OpContext
from gocdbackup.errors import (
    GocdBackupError,
    IntegrityError,
    NotFound,
    PreconditionFailed,
    ShardsMissing,
)
from gocdbackup.model.artifacts import ArtifactEntry, ArtifactIndex, ObjectRef, Outcome
from gocdbackup.model.backup import BackupSet, BackupStatus, Timings
from gocdbackup.model.ids import make_backup_id
from gocdbackup.model.manifest import Manifest, component_from_dict, component_to_dict
from gocdbackup.model.shards import ShardPlan, refs_from_jsonl, refs_jsonl, split
from gocdbackup.ops._components import checked_stream
from gocdbackup.ops.artifact_index import reusable_index, store_index
from gocdbackup.ops.artifacts import DEFAULT_WORKERS, absent_entries, backup_artifacts
from gocdbackup.ops.backup import dump_database, store_marker
from gocdbackup.ops.catalog import list_backups
from gocdbackup.ports import GocdnextData, ObjectStore, Postgres
from gocdbackup.repository import Repository, chunk_stream, store_stream
from gocdbackup.repository.journal import Journal, delete_journals

log = logging.getLogger("gocdbackup.ops.shards")

PENDING = "pending"  # records/pending/<backup id>: the shard plan
DONE = "shard_done"  # records/shard_done/<backup id>.<n>: a finished shard's index
REFS_KIND = "shard_refs"


def _shard_id(backup_id: str, shard: int) -> str:
    """A shard's name: its done record's id and its journal's."""
    return f"{backup_id}.{shard}"


def start_detached(
    repo: Repository,
    db: Postgres,
    *,
    ctx: OpContext,
    artifacts: ObjectStore,
    gocdnext: GocdnextData,
    shards: int,
    label: str = "",
    tool_version: str = "",
    fail_on_missing: bool = False,
) -> ShardPlan:
    """Dump the database and read the objects its snapshot references, as a backup does, then
    split those objects into ``shards`` and write the plan; nothing is listed until
    :func:`finish_shards`."""
    started = ctx.now()
    backup_id = make_backup_id(started, os.urandom(3).hex())
    with repo.lock("shared", "backup", ctx.clock) as lock:
        known = repo.blob_sizes()
        with db.snapshot(ctx) as snap:
            point = snap.point()
            refs = gocdnext.referenced_objects(snap.snapshot_id)
            database, dump, dump_seconds = dump_database(repo, snap, known, ctx)
            newest = gocdnext.newest_run(snap.snapshot_id)
        parts = [
            store_stream(
                repo,
                chunk_stream(io.BytesIO(refs_jsonl(part)), repo.chunker),
                kind=f"{REFS_KIND}:{n}",
                known=known,
                ctx=ctx,
                phase="shard plan",
            )
            for n, part in enumerate(split(refs, shards))
        ]
        backup = BackupSet(
            id=backup_id,
            status=BackupStatus.RUNNING,
            label=label,
            point=point,
            database=database,
            components=(dump, *parts),
            newest_run=newest,
            timings=Timings(started_at=started, finished_at=ctx.now(), dump_seconds=dump_seconds),
            tool_version=tool_version,
        )
        plan = ShardPlan(
            backup=backup,
            shards=shards,
            store=artifacts.url,
            listed_at=ctx.now(),
            fail_on_missing=fail_on_missing,
        )
        lock.check()
        repo.write_record(PENDING, backup_id, plan.to_json())
    log.info("backup %s waits for %d shard(s) of %d object(s)", backup_id, shards, len(refs))
    return plan


def read_plan(repo: Repository, backup_id: str) -> ShardPlan:
    raw = repo.read_record(PENDING, backup_id)
    if raw is None:
        if backup_id in repo.backup_ids():
            raise PreconditionFailed(f"backup {backup_id} is committed already: nothing to do")
        raise NotFound(f"no backup {backup_id} waits for shards in this repository")
    return ShardPlan.from_json(raw)


def done_shards(repo: Repository, backup_id: str) -> list[int]:
    prefix = f"{backup_id}."
    return sorted(int(i[len(prefix) :]) for i in repo.record_ids(DONE) if i.startswith(prefix))


def run_shard(
    repo: Repository,
    backup_id: str,
    shard: int,
    store: ObjectStore,
    *,
    ctx: OpContext,
    workers: int = DEFAULT_WORKERS,
) -> ArtifactIndex:
    """Copy shard ``shard``'s objects of the detached backup from ``store`` (reusing what the
    newest backup and any interrupted run of this shard hold) and record its index.  A shard
    done already is not done again."""
    plan = read_plan(repo, backup_id)
    if not 0 <= shard < plan.shards:
        raise PreconditionFailed(
            f"backup {backup_id} has shards 0 to {plan.shards - 1}, not {shard}"
        )
    record = _shard_id(backup_id, shard)
    with repo.lock("shared", "backup", ctx.clock) as lock:
        existing = repo.read_record(DONE, record)
        if existing is not None:
            index = _load_part(repo, existing, ctx)
            log.info("shard %d of %s was done already", shard, backup_id)
            return index
        known = repo.blob_sizes()
        raw = b"".join(
            checked_stream(repo, plan.backup.component(f"{REFS_KIND}:{shard}"), ctx, phase="shard")
        )
        refs = refs_from_jsonl(raw)
        previous, _ = reusable_index(repo, list_backups(repo), ctx)
        index = backup_artifacts(
            repo,
            refs,
            store,
            None,
            previous=previous,
            known=known,
            ctx=ctx,
            journal=Journal(repo, _shard_id(backup_id, shard)),
            workers=workers,
        )
        part = store_index(repo, index, known, ctx)
        lock.check()
        repo.write_record(DONE, record, json.dumps(component_to_dict(part)).encode())
    return index


def _load_part(repo: Repository, raw: bytes, ctx: OpContext) -> ArtifactIndex:
    part = component_from_dict(json.loads(raw))
    return ArtifactIndex.from_jsonl(b"".join(checked_stream(repo, part, ctx, phase="index")))


def finish_shards(
    repo: Repository, backup_id: str, *, ctx: OpContext, gocdnext: GocdnextData | None
) -> BackupSet:
    """Commit the detached backup once every shard is done (the objects a shard did not find
    checked against the database now, with ``gocdnext``: retired rows make them "expired
    during backup"); :class:`PreconditionFailed` naming the shards still missing otherwise."""
    plan = read_plan(repo, backup_id)
    missing = sorted(set(range(plan.shards)) - set(done_shards(repo, backup_id)))
    if missing:
        raise ShardsMissing(
            f"backup {backup_id}: {len(missing)} of {plan.shards} shard(s) not done yet: "
            + ", ".join(map(str, missing)),
            missing,
        )
    with repo.lock("shared", "backup", ctx.clock) as lock:
        known = repo.blob_sizes()
        entries: list[ArtifactEntry] = []
        absent: list[ObjectRef] = []
        for shard in range(plan.shards):
            raw = repo.read_record(DONE, _shard_id(backup_id, shard))
            assert raw is not None
            for entry in _load_part(repo, raw, ctx).entries:
                if entry.outcome is Outcome.MISSING and gocdnext is not None:
                    absent.append(entry.ref)
                else:
                    entries.append(entry)
        entries.extend(absent_entries(absent, gocdnext))
        index = ArtifactIndex(entries=tuple(sorted(entries, key=lambda e: e.ref.key)))
        lost = [e.ref.key for e in index.entries if e.outcome is Outcome.MISSING]
        if lost and plan.fail_on_missing:
            raise IntegrityError(
                f"{len(lost)} ready object(s) are missing from {plan.store}; nothing was committed",
                problems=lost,
            )
        dump = plan.backup.components[0]
        backup = attrs.evolve(
            plan.backup,
            status=BackupStatus.DONE,
            components=(dump, store_index(repo, index, known, ctx)),
            artifacts=tuple(index.counts().items()),
            point=attrs.evolve(
                plan.backup.point, store_marker=store_marker(plan.store, plan.listed_at, index)
            ),
            timings=attrs.evolve(plan.backup.timings, finished_at=ctx.now()),
        )
        ctx.check()
        lock.check()
        repo.write_manifest(Manifest(backup=backup))  # the commit point
    _forget_plan(repo, plan)
    return backup


def _forget_plan(repo: Repository, plan: ShardPlan) -> None:
    backup_id = plan.backup.id
    delete_journals(repo, [_shard_id(backup_id, n) for n in range(plan.shards)])
    for shard in range(plan.shards):
        repo.delete_record(DONE, _shard_id(backup_id, shard))
    repo.delete_record(PENDING, backup_id)


def pending_blobs(repo: Repository, ctx: OpContext) -> Iterator[str]:
    """Every blob a detached backup still waiting for its shards holds: its dump, its shard
    plan, and each finished shard's index and objects (streamed, repeats possible)."""
    for backup_id in repo.record_ids(PENDING):
        try:
            plan = read_plan(repo, backup_id)
            for component in plan.backup.components:
                yield from (c.blob_id for c in component.chunks)
            for shard in done_shards(repo, backup_id):
                raw = repo.read_record(DONE, _shard_id(backup_id, shard))
                if raw is None:
                    continue
                part = component_from_dict(json.loads(raw))
                yield from (c.blob_id for c in part.chunks)
                yield from (c.blob_id for c in _load_part(repo, raw, ctx).chunks())
        except (GocdBackupError, ValueError) as exc:
            raise PreconditionFailed(
                f"the pending backup {backup_id} is unreadable ({exc}); garbage collection "
                "refuses to run until it is finished or removed"
            ) from exc
