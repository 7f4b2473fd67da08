"""The artefact bucket's own point in time, from Python: how safe its settings keep it
(:func:`audit_store`), and rolling it (or a copy of it) back to an instant
(:func:`restore_store_to_time`), server-side, with a dry run and a plan id first."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from gocdbackup.context import CancelToken, OpContext, ProgressSink, SystemClock
from gocdbackup.drivers.bucket_versions import open_versioned
from gocdbackup.errors import ConfigError
from gocdbackup.model.batch_manifest import (
    MANIFEST_PREFIX,
    BatchRollback,
    check_job_identity,
    job_document,
    manifest_rows,
    read_manifest,
)
from gocdbackup.model.store_audit import CHECKS, StoreAudit, audit_findings
from gocdbackup.ops.bucket_pit import (
    PitResult,
    apply_store_rollback,
    plan_store_rollback,
    run_manifest,
)
from gocdbackup.ports_bucket import VersionedBucket

Bucket = str | VersionedBucket


def versioned(
    store: Bucket, storage_options: dict[str, Any] | None = None, *, transfers: int = 32
) -> VersionedBucket:
    """The bucket a URL names (or ``store`` itself), with its history."""
    if isinstance(store, str):
        return open_versioned(store, storage_options, transfers=transfers)
    return store


def _context(progress: ProgressSink | None, cancel: CancelToken | None = None) -> OpContext:
    return OpContext.using(progress, cancel=cancel or CancelToken(), clock=SystemClock())


def as_time(value: datetime | str, what: str = "the time") -> datetime:
    """An aware datetime from a datetime or an ISO 8601 string; ConfigError otherwise."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{what} {value!r} is not an ISO 8601 time") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(
            f"{what} {value.isoformat()} has no time zone; give one "
            f"(e.g. {value.isoformat()}+00:00)"
        )
    return value


def audit_store(
    store: Bucket,
    *,
    keep_days: int = 30,
    skip: tuple[str, ...] = (),
    storage_options: dict[str, Any] | None = None,
) -> StoreAudit:
    """Versioning, lifecycle (noncurrent versions kept at least ``keep_days``, the backup
    retention), replication, object lock, encryption and public access of the artefact
    bucket, each with what gocdnext's guide recommends where it falls short.  ``skip``:
    checks whose shortfall is accepted (they are still reported)."""
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise ConfigError(f"no such check: {', '.join(unknown)} (checks: {', '.join(CHECKS)})")
    if keep_days < 1:
        raise ConfigError(f"keep_days must be at least 1, not {keep_days}")
    bucket = versioned(store, storage_options)
    settings = bucket.settings()
    findings = tuple(audit_findings(settings, keep_days=keep_days))
    return StoreAudit(store=bucket.url, settings=settings, findings=findings, skipped=tuple(skip))


def restore_store_to_time(
    store: Bucket,
    at: datetime | str,
    *,
    into: Bucket | None = None,
    dry_run: bool = True,
    confirm: str | None = None,
    storage_options: dict[str, Any] | None = None,
    transfers: int = 32,
    progress: ProgressSink | None = None,
    cancel: CancelToken | None = None,
) -> PitResult:
    """Make ``store`` hold exactly what it held at ``at`` (or write that into ``into``, the
    source untouched): for every key, the version current at ``at`` becomes current again
    (a server-side copy), and keys created later are deleted (a delete marker: their bytes
    stay a noncurrent version).  With ``dry_run`` (the default) only the plan; to carry it
    out, ``dry_run=False, confirm=<the plan's id>``.  Running it again resumes."""
    when = as_time(at)
    bucket = versioned(store, storage_options, transfers=transfers)
    target = None if into is None else versioned(into, storage_options, transfers=transfers)
    ctx = _context(progress, cancel)
    if dry_run or confirm is None:
        plan = plan_store_rollback(bucket, when, ctx=ctx, into=target)
        if not dry_run:
            raise ConfigError(
                f"rolling {bucket.url} back needs confirm={plan.id!r} (the plan's id; nothing "
                "was changed)"
            )
        return PitResult(plan=plan, done={}, failed={}, dry_run=True)
    return apply_store_rollback(bucket, when, confirm=confirm, ctx=ctx, into=target)


def _s3_location(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ConfigError(f"{url}: S3 Batch Operations runs on S3 buckets only (s3://…)")
    bucket, _, root = url[len("s3://") :].partition("/")
    return bucket, root.strip("/")


def emit_batch_rollback(
    store: str,
    at: datetime | str,
    *,
    confirm: str,
    manifest_path: str,
    account_id: str,
    role_arn: str,
    storage_options: dict[str, Any] | None = None,
    transfers: int = 32,
    progress: ProgressSink | None = None,
) -> BatchRollback:
    """The rollback of ``store`` (an S3 URL) to ``at`` with its copies handed to S3 Batch
    Operations: the plan is checked against ``confirm`` as in :func:`restore_store_to_time`,
    the keys to delete are deleted here, and the copies are written as a Batch Operations
    manifest (``manifest_path``) and job (``manifest_path + ".job.json"``) to submit.  Once
    the job has run, the same rollback plans nothing more."""
    when = as_time(at)
    bucket_name, root = _s3_location(store)
    check_job_identity(account_id, role_arn)  # before anything is done
    bucket = versioned(store, storage_options, transfers=transfers)
    ctx = _context(progress)
    result = apply_store_rollback(bucket, when, confirm=confirm, ctx=ctx, copies=False)
    manifest = "".join(manifest_rows(bucket_name, root, result.plan.work())).encode()
    manifest_key = f"{MANIFEST_PREFIX}{result.plan.id}.csv"
    job_path = f"{manifest_path}.job.json"
    document = job_document(
        plan_id=result.plan.id,
        bucket=bucket_name,
        manifest_key=manifest_key,
        manifest=manifest,
        account_id=account_id,
        role_arn=role_arn,
    )
    Path(manifest_path).write_bytes(manifest)
    Path(job_path).write_text(json.dumps(document, indent=2) + "\n")
    return BatchRollback(
        plan_id=result.plan.id,
        bucket=bucket_name,
        manifest_key=manifest_key,
        manifest_path=manifest_path,
        job_path=job_path,
        copies=manifest.count(b"\n"),
        deleted=result.done.get("delete", 0),
        failed=result.failed,
    )


def run_batch_manifest(
    manifest_path: str,
    *,
    storage_options: dict[str, Any] | None = None,
    transfers: int = 32,
    progress: ProgressSink | None = None,
) -> PitResult:
    """Do here what the S3 Batch Operations job of :func:`emit_batch_rollback` does: copy
    every version the manifest lists onto its key (for MinIO, or to check a manifest)."""
    try:
        text = Path(manifest_path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the manifest {manifest_path!r}: {exc.strerror}") from exc
    rows = read_manifest(text)
    buckets = {b for b, _, _ in rows}
    if len(buckets) > 1:
        raise ConfigError(f"the manifest names {len(buckets)} buckets; a rollback has one")
    if not rows:
        raise ConfigError(f"the manifest {manifest_path!r} lists nothing")
    bucket = versioned(f"s3://{buckets.pop()}", storage_options, transfers=transfers)
    ctx = _context(progress)
    return run_manifest(bucket, [(k, v) for _, k, v in rows], ctx=ctx)
