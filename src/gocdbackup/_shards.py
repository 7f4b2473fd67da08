"""Sharded artefact backups from Python: detached (the database dumped, the shard plan written,
each shard run by a separate process or pod, then committed) or all at once on this machine
with one worker process per shard (:func:`backup_sharded`), each with its own connections and
event loop: how one machine gets past one event loop."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed

from gocdbackup._facade import GocdBackup
from gocdbackup._wiring import __version__, artifact_store
from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError, GocdBackupError
from gocdbackup.model.artifacts import ArtifactIndex
from gocdbackup.model.backup import BackupSet
from gocdbackup.model.shards import ShardPlan, check_shards
from gocdbackup.ops import shards as ops
from gocdbackup.ports import GocdnextData, ObjectStore, Postgres
from gocdbackup.repository import Repository


def _gocdnext(gb: GocdBackup, db: str | Postgres, gocdnext: GocdnextData | None) -> GocdnextData:
    if gocdnext is not None:
        return gocdnext
    if isinstance(db, str):
        return gb._gocdnext_data(db)
    raise ConfigError("a sharded backup reads gocdnext's rows: pass gocdnext= (GocdnextData)")


def backup_detached(
    gb: GocdBackup,
    db: str | Postgres,
    *,
    artifacts: str | ObjectStore,
    shards: int,
    label: str = "",
    gocdnext: GocdnextData | None = None,
    fail_on_missing: bool = False,
) -> ShardPlan:
    """Dump the database and write a plan of ``shards`` shards for the artefacts its snapshot
    references; the backup is listed once :func:`finish_shards` commits it.  Each shard is
    copied by :func:`run_shard` (``gocdbackup shard run ID --index N``: a pod of a Kubernetes
    Indexed Job, say)."""
    check_shards(shards)
    store = artifact_store(artifacts, gb.artifact_options)
    assert store is not None
    return ops.start_detached(
        gb.repository,
        gb.database(db),
        ctx=gb.context(),
        artifacts=store,
        gocdnext=_gocdnext(gb, db, gocdnext),
        shards=shards,
        label=label,
        tool_version=__version__(),
        fail_on_missing=fail_on_missing,
    )


def run_shard(
    gb: GocdBackup, backup_id: str, shard: int, *, artifacts: str | ObjectStore | None = None
) -> ArtifactIndex:
    """Copy shard ``shard`` of the detached backup ``backup_id`` (from ``artifacts``, default:
    the store the plan names, with the artefact options given to ``gb``).  Run it again after
    a failure or a kill: what was copied is reused."""
    plan = ops.read_plan(gb.repository, backup_id)
    store = artifact_store(artifacts or plan.store, gb.artifact_options)
    assert store is not None
    return ops.run_shard(
        gb.repository, backup_id, shard, store, ctx=gb.context(), workers=gb.transfers
    )


def finish_shards(
    gb: GocdBackup, backup_id: str, *, db: str | GocdnextData | None = None
) -> BackupSet:
    """Commit the detached backup once every shard is done; with ``db`` (gocdnext's database),
    the objects a shard did not find are told apart (retired by gocdnext meanwhile, or
    missing).  :class:`~gocdbackup.errors.ShardsMissing` names the shards not done yet."""
    data = None if db is None else gb._gocdnext_data(db)
    return ops.finish_shards(gb.repository, backup_id, ctx=gb.context(), gocdnext=data)


def pending(gb: GocdBackup) -> list[ShardPlan]:
    """The detached backups waiting for their shards."""
    return [ops.read_plan(gb.repository, i) for i in gb.repository.record_ids(ops.PENDING)]


def _worker(  # noqa: PLR0917 - handed over as a pickled call to another process
    repo_store: ObjectStore,
    password: bytes,
    backup_id: str,
    shard: int,
    store: ObjectStore,
    transfers: int,
) -> dict[str, int]:
    """One shard in a process of its own (the repository reopened there)."""
    repo = Repository.open(repo_store, password)
    index = ops.run_shard(repo, backup_id, shard, store, ctx=OpContext(), workers=transfers)
    return index.counts()


def backup_sharded(
    gb: GocdBackup,
    db: str | Postgres,
    *,
    artifacts: str,
    shards: int,
    label: str = "",
    gocdnext: GocdnextData | None = None,
    fail_on_missing: bool = False,
) -> BackupSet:
    """A backup whose artefact copy runs in ``shards`` worker processes on this machine, each
    with its own connections and event loop; committed when every shard is done.  If a
    worker fails, the backup stays pending with the shards that finished (finish it with
    :func:`run_shard` for the others and :func:`finish_shards`)."""
    store = artifact_store(artifacts, gb.artifact_options)  # read by every worker
    assert store is not None
    repo_store = gb.repository.store
    if store.url.startswith("memory://") or repo_store.url.startswith("memory://"):
        raise ConfigError(
            "worker processes cannot reach an in-memory store: use a file://, s3:// or gs:// "
            "repository and artefact store (or shards=1)"
        )
    data = _gocdnext(gb, db, gocdnext)
    plan = backup_detached(
        gb,
        db,
        artifacts=store,
        shards=shards,
        label=label,
        gocdnext=data,
        fail_on_missing=fail_on_missing,
    )
    backup_id = plan.backup.id
    ctx = gb.context()
    failures: list[str] = []
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=shards, mp_context=spawn) as pool:
        futures = {
            pool.submit(_worker, repo_store, gb._password, backup_id, n, store, gb.transfers): n
            for n in range(shards)
        }
        for done, future in enumerate(as_completed(futures), start=1):
            try:
                future.result()
            except Exception as exc:
                failures.append(f"shard {futures[future]}: {exc}")
            ctx.report("shards", done, shards, unit="shards")
    if failures:
        raise GocdBackupError(
            f"backup {backup_id}: {len(failures)} shard(s) failed ({'; '.join(failures)}); "
            "the others are kept: run the failed ones again (shard run), then shard finish"
        )
    return ops.finish_shards(gb.repository, backup_id, ctx=ctx, gocdnext=data)
