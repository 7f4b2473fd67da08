"""Child process of the artefact benchmark: one artefact backup or one artefact restore against
a moto S3 server, then its timing and memory as one JSON line on stdout.

Usage::

    python _artifacts_child.py backup  ENDPOINT REPO_DIR REFS_JSONL
    python _artifacts_child.py sharded ENDPOINT REPO_DIR REFS_JSONL SHARDS
    python _artifacts_child.py restore ENDPOINT REPO_DIR BACKUP_ID BUCKET

``backup`` runs :func:`gocdbackup.ops.take_backup` with a :class:`FakeGocdnext` whose rows
reference the objects of ``REFS_JSONL`` (one ``{"key", "size", "sha256", ...}`` per line) in
the bucket ``src``, into the file repository ``REPO_DIR`` (created on first use); ``sharded``
backs up the same way through :func:`gocdbackup._shards.backup_sharded` (``--shards``: the
database dumped here, the objects copied by ``SHARDS`` spawned worker processes, committed
here); ``restore`` loads that backup's artefact index and runs :func:`restore_artifacts` into
``BUCKET``.

The peak is the kernel's high-water mark of this process (``VmHWM``), reset just before the
timed call (``/proc/self/clear_refs``), as in ``_backup_child.py``.  The CPU time is this
process's (user + system, every thread) during the timed call; a sharded backup adds its worker
processes' (``RUSAGE_CHILDREN``, once the pool has joined them) and the time of its steps (the
dump and shard plan, the workers, the commit).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from _rss import reset_peak, status_kib
from gocdbackup import _shards
from gocdbackup._facade import GocdBackup
from gocdbackup.context import OpContext
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.model.artifacts import ObjectKind, ObjectRef
from gocdbackup.model.progress import ProgressEvent
from gocdbackup.ops import shards as shard_ops
from gocdbackup.ops import take_backup
from gocdbackup.ops.artifact_index import load_index
from gocdbackup.ops.artifact_restore import restore_artifacts
from gocdbackup.repository import Repository
from gocdbackup.testing import FakeDatabaseContents, FakeGocdnext, FakePostgres

PASSPHRASE = b"bench-artifacts"  # a throwaway repository in a temporary directory
SCRYPT_N = 2**10
SOURCE_BUCKET = "src"
#: the fake database's dump: small, the benchmark is about the objects
DUMP_BYTES = 64 * 1024

T = TypeVar("T")


def s3_options(endpoint: str) -> dict[str, Any]:
    return {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}


def load_refs(path: Path) -> list[ObjectRef]:
    refs = []
    for line in path.read_text().splitlines():
        d = json.loads(line)
        refs.append(
            ObjectRef(
                kind=ObjectKind.ARTIFACT,
                key=d["key"],
                row_id=d["row_id"],
                status="ready",
                size_bytes=d["size"],
                sha256=d["sha256"],
                project_id=d["project_id"],
                pipeline_id=d["pipeline_id"],
                run_id=d["run_id"],
            )
        )
    return refs


def open_repo(repo_dir: Path) -> Repository:
    store = FsspecStore(f"file://{repo_dir}")
    if next(iter(store.list("")), None) is None:
        return Repository.init(store, PASSPHRASE, now=datetime.now(UTC), scrypt_n=SCRYPT_N)
    return Repository.open(store, PASSPHRASE)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _measured(fn: Callable[[], T]) -> tuple[T, dict[str, Any]]:
    startup_peak = status_kib("VmHWM")
    reset = reset_peak()
    before = status_kib("VmRSS")
    cpu = _cpu()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    return out, {
        "seconds": seconds,
        "cpu_seconds": _cpu() - cpu,
        "startup_peak_kib": startup_peak,
        "rss_before_kib": before,
        "peak_kib": status_kib("VmHWM"),
        "peak_is_run_only": reset,
    }


def fake_db(refs: list[ObjectRef]) -> FakePostgres:
    return FakePostgres(
        "gocdnext",
        {
            "gocdnext": FakeDatabaseContents(
                tables={"artifacts": len(refs)}, objects=refs, payload_bytes=DUMP_BYTES
            )
        },
    )


def backup(endpoint: str, repo_dir: Path, refs_path: Path) -> dict[str, Any]:
    refs = load_refs(refs_path)
    db = fake_db(refs)
    repo = open_repo(repo_dir)
    store = FsspecStore(f"s3://{SOURCE_BUCKET}", s3_options(endpoint))
    rows = FakeGocdnext(db)
    result, m = _measured(
        lambda: take_backup(repo, db, gocdnext=rows, ctx=OpContext(), artifacts=store)
    )
    return {
        **m,
        "backup_id": result.id,
        "artifacts": dict(result.artifacts),
        "size_bytes": result.size_bytes,
        "stored_bytes": result.stored_bytes,
    }


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timing(owner: Any, name: str, marks: dict[str, float], start: list[float]) -> None:
    """Wrap ``owner.name`` (in this process only: spawned workers import their own) so that
    ``marks`` gets when it was called and when it returned, in seconds since ``start[0]``."""
    inner = getattr(owner, name)

    def timed_call(*args: Any, **kw: Any) -> Any:
        marks[f"{name}_called"] = time.perf_counter() - start[0]
        try:
            return inner(*args, **kw)
        finally:
            marks[f"{name}_returned"] = time.perf_counter() - start[0]

    setattr(owner, name, timed_call)


def _worker_startup(repo_dir: Path, endpoint: str) -> float:
    """What a shard worker does before copying, in a spawned process: the repository opened,
    the S3 filesystem made (s3fs, aiobotocore imported); this process's CPU so far."""
    Repository.open(FsspecStore(f"file://{repo_dir}"), PASSPHRASE)
    FsspecStore(f"s3://{SOURCE_BUCKET}", s3_options(endpoint)).fs  # noqa: B018 - made on use
    return _cpu()


def worker_startup(repo_dir: Path, endpoint: str, shards: int) -> dict[str, Any]:
    """The fixed cost of the sharded backup's pool, measured apart: ``shards`` spawned
    processes started and made ready to copy (no request sent), then joined."""
    start = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=shards, mp_context=spawn) as pool:
        cpu = list(pool.map(_worker_startup, [repo_dir] * shards, [endpoint] * shards))
    return {"seconds": time.perf_counter() - start, "cpu_seconds": cpu}


def sharded(endpoint: str, repo_dir: Path, refs_path: Path, shards: int) -> dict[str, Any]:
    refs = load_refs(refs_path)
    db = fake_db(refs)
    open_repo(repo_dir)  # an empty repository, as ``backup`` creates it
    startup = worker_startup(repo_dir, endpoint, shards)
    start = [time.perf_counter()]
    marks: dict[str, float] = {}
    shard_done: list[float] = []

    def progress(event: ProgressEvent) -> None:
        if event.phase == "shards":
            shard_done.append(time.perf_counter() - start[0])

    gb = GocdBackup(
        f"file://{repo_dir}",
        password=PASSPHRASE,
        artifact_options=s3_options(endpoint),
        progress=progress,
    )
    _timing(_shards, "backup_detached", marks, start)  # the dump and the shard plan
    _timing(shard_ops, "finish_shards", marks, start)  # the commit
    children = _children_cpu()

    def run() -> Any:
        start[0] = time.perf_counter()
        return _shards.backup_sharded(
            gb,
            db,
            artifacts=f"s3://{SOURCE_BUCKET}",
            shards=shards,
            gocdnext=FakeGocdnext(db),
        )

    result, m = _measured(run)
    return {
        **m,
        "workers_cpu_seconds": _children_cpu() - children,
        "worker_startup": startup,
        "steps": {**marks, "shard_done": shard_done},
        "backup_id": result.id,
        "artifacts": dict(result.artifacts),
        "size_bytes": result.size_bytes,
        "stored_bytes": result.stored_bytes,
    }


def restore(endpoint: str, repo_dir: Path, backup_id: str, bucket: str) -> dict[str, Any]:
    repo = open_repo(repo_dir)
    store = FsspecStore(f"s3://{bucket}", s3_options(endpoint))
    backup_set = repo.read_manifest(backup_id).backup
    index_seconds: list[float] = []

    def run() -> dict[str, int]:
        ctx = OpContext()
        start = time.perf_counter()
        index = load_index(repo, backup_set, ctx)
        index_seconds.append(time.perf_counter() - start)
        if index is None:
            raise RuntimeError(f"backup {backup_id} has no artefact index")
        return restore_artifacts(repo, index, store, ctx=ctx).summary()

    summary, m = _measured(run)
    return {**m, **summary, "index_seconds": index_seconds[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("backup")
    b.add_argument("endpoint")
    b.add_argument("repo_dir", type=Path)
    b.add_argument("refs", type=Path)
    s = sub.add_parser("sharded")
    s.add_argument("endpoint")
    s.add_argument("repo_dir", type=Path)
    s.add_argument("refs", type=Path)
    s.add_argument("shards", type=int)
    r = sub.add_parser("restore")
    r.add_argument("endpoint")
    r.add_argument("repo_dir", type=Path)
    r.add_argument("backup_id")
    r.add_argument("bucket")
    args = parser.parse_args(argv)
    if args.mode == "backup":
        out = backup(args.endpoint, args.repo_dir, args.refs)
    elif args.mode == "sharded":
        out = sharded(args.endpoint, args.repo_dir, args.refs, args.shards)
    else:
        out = restore(args.endpoint, args.repo_dir, args.backup_id, args.bucket)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
