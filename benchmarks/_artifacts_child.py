"""Child process of the artefact benchmark: one artefact backup or one artefact restore against
a moto S3 server, then its timing and memory as one JSON line on stdout.

Usage::

    python _artifacts_child.py backup  ENDPOINT REPO_DIR REFS_JSONL
    python _artifacts_child.py restore ENDPOINT REPO_DIR BACKUP_ID BUCKET

``backup`` runs :func:`gocdbackup.ops.take_backup` with a :class:`FakeGocdnext` whose rows
reference the objects of ``REFS_JSONL`` (one ``{"key", "size", "sha256", ...}`` per line) in
the bucket ``src``, into the file repository ``REPO_DIR`` (created on first use); ``restore``
loads that backup's artefact index and runs :func:`restore_artifacts` into ``BUCKET``.

The peak is the kernel's high-water mark of this process (``VmHWM``), reset just before the
timed call (``/proc/self/clear_refs``), as in ``_backup_child.py``.  The CPU time is this
process's (user + system, every thread) during the timed call.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from _rss import reset_peak, status_kib
from gocdbackup.context import OpContext
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.model.artifacts import ObjectKind, ObjectRef
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


def backup(endpoint: str, repo_dir: Path, refs_path: Path) -> dict[str, Any]:
    refs = load_refs(refs_path)
    db = FakePostgres(
        "gocdnext",
        {
            "gocdnext": FakeDatabaseContents(
                tables={"artifacts": len(refs)}, objects=refs, payload_bytes=DUMP_BYTES
            )
        },
    )
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
    r = sub.add_parser("restore")
    r.add_argument("endpoint")
    r.add_argument("repo_dir", type=Path)
    r.add_argument("backup_id")
    r.add_argument("bucket")
    args = parser.parse_args(argv)
    if args.mode == "backup":
        out = backup(args.endpoint, args.repo_dir, args.refs)
    else:
        out = restore(args.endpoint, args.repo_dir, args.backup_id, args.bucket)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
