"""gocdnext's object key layouts (the same in every backend) and the thresholds of its
sweeper and reaper."""

from __future__ import annotations

import re
from datetime import timedelta

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
#: artefacts: ``run/<run_id>/job/<job_run_id>/<uuid>``
ARTIFACT_LAYOUT = rf"run/{_UUID}/job/{_UUID}/{_UUID}"
#: caches: ``cache/<project_id>/<sha256 of the cache key>``
CACHE_LAYOUT = rf"cache/{_UUID}/[0-9a-f]{{64}}"
#: archived job logs: ``logs/<job_run_id>.log.gz``
LOG_ARCHIVE_LAYOUT = rf"logs/{_UUID}\.log\.gz"
#: every key layout gocdnext writes
LAYOUTS = re.compile(f"{ARTIFACT_LAYOUT}|{CACHE_LAYOUT}|{LOG_ARCHIVE_LAYOUT}")
#: the filesystem backend writes ``<key>.part`` first, then renames it
PARTIAL_SUFFIX = ".part"

#: the sweeper's grace for ``pending`` and ``deleting`` rows (its reaper retires ``pending``
#: rows older than this)
PENDING_TIMEOUT = timedelta(minutes=5)
#: how often the sweeper runs
SWEEP_TICK = timedelta(minutes=10)
#: the time to live gocdnext stamps on a new artefact (``expires_at``) and a cache's default
ARTIFACT_TTL = timedelta(days=30)


def in_layout(key: str) -> bool:
    """Whether ``key`` is one gocdnext writes (an artefact, a cache or a log archive)."""
    return LAYOUTS.fullmatch(key) is not None


def artifact_key(run_id: str, job_run_id: str, object_id: str) -> str:
    return f"run/{run_id}/job/{job_run_id}/{object_id}"


def cache_key(project_id: str, key_sha256: str) -> str:
    return f"cache/{project_id}/{key_sha256}"


def log_archive_key(job_run_id: str) -> str:
    return f"logs/{job_run_id}.log.gz"
