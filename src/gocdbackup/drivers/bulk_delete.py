"""Deleting many objects in few requests: S3's ``DeleteObjects`` (1,000 keys a request) and
GCS's batch endpoint (100 deletes a batch, through gcsfs).  Each function makes one request
for ``paths`` (full paths, bucket first) and answers the paths it could not delete, with the
reason; a missing object counts as deleted."""

from __future__ import annotations

from typing import Any

import fsspec.asyn

S3_BATCH = 1000  # DeleteObjects' limit
GCS_BATCH = 100  # a GCS batch request's limit


def s3(fs: Any, paths: list[str]) -> dict[str, str]:
    bucket = paths[0].split("/", 1)[0]
    objects = [{"Key": path.split("/", 1)[1]} for path in paths]
    answer = fs.call_s3("delete_objects", Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    return {f"{bucket}/{e['Key']}": str(e.get("Code")) for e in answer.get("Errors", [])}


def gcs(fs: Any, paths: list[str]) -> dict[str, str]:
    outcomes = fsspec.asyn.sync(fs.loop, fs._delete_files, paths, GCS_BATCH)
    return {
        path: type(outcome).__name__
        for path, outcome in zip(paths, outcomes, strict=False)
        if isinstance(outcome, Exception) and not isinstance(outcome, FileNotFoundError)
    }
