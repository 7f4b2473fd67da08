"""A bucket rollback handed to S3 Batch Operations instead of copied in process: the manifest
(CSV of bucket, key, version id: the ``S3BatchOperations_CSV_20180820`` format, keys
URL-encoded) and the job that copies each listed version onto its key (``S3PutObjectCopy``),
for ``aws s3control create-job``.  Pure: the driver uploads, the CLI prints the commands.

Batch Operations has no delete: the keys a rollback deletes are deleted by gocdbackup itself
(one ``DeleteObjects`` per 1,000 keys), only the copies go to the job."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator
from urllib.parse import quote, unquote

from attrs import frozen

from gocdbackup.errors import ConfigError
from gocdbackup.model.bucket_versions import PitAction, PitStep

FORMAT = "S3BatchOperations_CSV_20180820"
#: where the manifest goes in the bucket (never planned: a rollback leaves it alone)
MANIFEST_PREFIX = ".gocdbackup-batch/"


def manifest_rows(bucket: str, root: str, steps: Iterable[PitStep]) -> Iterator[str]:
    """One CSV line per copy: ``bucket,key,version`` with the key (under ``root``, the
    store's prefix in the bucket) URL-encoded as Batch Operations expects."""
    for step in steps:
        if step.action is not PitAction.RESTORE or step.version is None:
            continue
        key = f"{root}/{step.key}" if root else step.key
        yield f"{bucket},{quote(key, safe='/')},{step.version}\n"


def read_manifest(text: str) -> list[tuple[str, str, str]]:
    """``(bucket, key, version)`` of every line (the key decoded); ConfigError on a line that
    is not three fields."""
    rows = []
    for number, fields in enumerate(csv.reader(text.splitlines()), start=1):
        if len(fields) != 3 or not all(fields):
            raise ConfigError(f"batch manifest line {number}: expected bucket,key,version_id")
        rows.append((fields[0], unquote(fields[1]), fields[2]))
    return rows


def check_job_identity(account_id: str, role_arn: str) -> None:
    """The account and the role a Batch Operations job runs as, or ConfigError."""
    if not account_id.isdigit() or len(account_id) != 12:
        raise ConfigError(f"{account_id!r} is not an AWS account id (12 digits)")
    if not role_arn.startswith("arn:"):
        raise ConfigError(f"{role_arn!r} is not an IAM role ARN (arn:aws:iam::…:role/…)")


def job_document(
    *,
    plan_id: str,
    bucket: str,
    manifest_key: str,
    manifest: bytes,
    account_id: str,
    role_arn: str,
) -> dict[str, object]:
    """The ``--cli-input-json`` of ``aws s3control create-job``: copy each listed version onto
    its own key in ``bucket`` (metadata copied), the manifest at ``manifest_key`` (its ETag
    is its MD5: upload it with one PUT), a report of failures under the manifest's prefix."""
    if not account_id.isdigit() or len(account_id) != 12:
        raise ConfigError(f"{account_id!r} is not an AWS account id (12 digits)")
    if not role_arn.startswith("arn:"):
        raise ConfigError(f"{role_arn!r} is not an IAM role ARN (arn:aws:iam::…:role/…)")
    etag = hashlib.md5(manifest, usedforsecurity=False).hexdigest()
    return {
        "AccountId": account_id,
        "ConfirmationRequired": False,
        "Description": f"gocdbackup rollback {plan_id}",
        "Priority": 10,
        "RoleArn": role_arn,
        "Operation": {
            "S3PutObjectCopy": {
                "TargetResource": f"arn:aws:s3:::{bucket}",
                "MetadataDirective": "COPY",
            }
        },
        "Manifest": {
            "Spec": {"Format": FORMAT, "Fields": ["Bucket", "Key", "VersionId"]},
            "Location": {"ObjectArn": f"arn:aws:s3:::{bucket}/{manifest_key}", "ETag": etag},
        },
        "Report": {
            "Bucket": f"arn:aws:s3:::{bucket}",
            "Prefix": f"{MANIFEST_PREFIX}reports",
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "ReportScope": "FailedTasksOnly",
        },
    }


@frozen(kw_only=True)
class BatchRollback:
    """A rollback whose copies were handed to S3 Batch Operations: the deletes done here, the
    manifest and the job written, and the commands that submit them."""

    plan_id: str
    bucket: str
    manifest_key: str
    manifest_path: str
    job_path: str
    copies: int
    deleted: int
    failed: dict[str, str]

    def commands(self, account_id: str) -> list[str]:
        return [
            f"aws s3api put-object --bucket {self.bucket} --key {self.manifest_key} "
            f"--body {self.manifest_path}",
            f"aws s3control create-job --account-id {account_id} "
            f"--cli-input-json file://{self.job_path}",
        ]

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.plan_id,
            "bucket": self.bucket,
            "manifest_key": self.manifest_key,
            "manifest": self.manifest_path,
            "job": self.job_path,
            "copies": self.copies,
            "deleted": self.deleted,
            "failed": [{"key": k, "reason": v} for k, v in sorted(self.failed.items())],
        }
