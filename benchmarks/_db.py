"""Building the gocdnext-shaped benchmark databases, and changing ~1% of one like gocdnext does.

Sizes, measured with embedded PostgreSQL 18: a log line costs about 290 bytes on disk (heap,
primary key and the (job_run_id, seq) index) and the rest of the schema about 8 MB, so
``runs_per_pipeline=150`` below gives about 1.09 M log lines and ~330 MB.
"""

from __future__ import annotations

import math
import os
from typing import Any

import psycopg
from psycopg import sql

from gocdbackup.drivers import gocdnext_fixture
from gocdbackup.drivers.gocdnext_fixture import FixtureSpec
from gocdbackup.testing import LocalPostgres

#: ≥ 300 MB: 6 pipelines, 150 runs each, 3 stages of 2 jobs, half of them with 400 log lines
FULL = FixtureSpec(
    projects=3,
    pipelines_per_project=2,
    runs_per_pipeline=150,
    jobs_per_stage=2,
    log_lines_per_job=400,
)
#: the same shape at about half the size (for the memory-flatness benchmark)
HALF = FixtureSpec(
    projects=3,
    pipelines_per_project=2,
    runs_per_pipeline=75,
    jobs_per_stage=2,
    log_lines_per_job=400,
)

MIN_FULL_BYTES = 300 * 1024 * 1024  # the spec's "at least 300 MB", read as MiB (the stricter)


def database_size(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    assert row is not None
    return int(row[0])


def build(pg: LocalPostgres, name: str, spec: FixtureSpec) -> int:
    """Create database ``name`` filled per ``spec``; its size in bytes."""
    gocdnext_fixture.create_database(pg.dsn(), name)
    gocdnext_fixture.build(pg.dsn(name), spec, secret_key=os.urandom(32))
    checkpoint(pg.dsn(name))
    return database_size(pg.dsn(name))


def checkpoint(dsn: str) -> None:
    """Flush what building wrote, so no checkpoint competes with the timed runs."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def create_empty(pg: LocalPostgres, name: str) -> None:
    gocdnext_fixture.create_database(pg.dsn(), name)


def drop(pg: LocalPostgres, name: str) -> None:
    gocdnext_fixture.drop_database(pg.dsn(), name)


# -- a day in the life of gocdnext: ~1% of the runs change --------------------------------------

_DELETE_OLDEST = """
DELETE FROM runs WHERE id IN (SELECT id FROM runs ORDER BY created_at, counter LIMIT %(n)s)
"""

_NEW_RUNS = """
INSERT INTO runs (pipeline_id, counter, cause, revisions, status, created_at, started_at,
                  finished_at)
SELECT pl.id, last.counter + k, CASE WHEN k %% 2 = 0 THEN 'manual' ELSE 'webhook' END,
       jsonb_build_object('sha', md5(pl.id::text || (last.counter + k)), 'branch', 'main'),
       'success',
       now() + k * interval '37 minutes',
       now() + k * interval '37 minutes' + interval '5 seconds',
       now() + k * interval '37 minutes' + interval '9 minutes'
FROM pipelines pl
     JOIN LATERAL (SELECT max(counter) AS counter FROM runs r WHERE r.pipeline_id = pl.id)
          AS last ON true,
     generate_series(1, %(per_pipeline)s) k
RETURNING id
"""

_NEW_STAGES = """
INSERT INTO stage_runs (run_id, name, ordinal, status, started_at, finished_at)
SELECT r.id, s.name, s.ord, r.status, r.started_at + s.ord * interval '3 minutes',
       r.started_at + (s.ord + 1) * interval '3 minutes'
FROM runs r, (VALUES ('build', 0), ('test', 1), ('deploy', 2)) AS s(name, ord)
WHERE r.id = ANY(%(runs)s)
"""

_NEW_JOBS = """
INSERT INTO job_runs (run_id, stage_run_id, name, status, started_at, finished_at)
SELECT sr.run_id, sr.id, sr.name || '-' || m, sr.status, sr.started_at, sr.finished_at
FROM stage_runs sr, generate_series(1, %(jobs)s) m
WHERE sr.run_id = ANY(%(runs)s)
"""

_NEW_LOG_LINES = """
INSERT INTO log_lines (job_run_id, seq, stream, at, text)
SELECT jr.id, n, CASE WHEN n %% 9 = 0 THEN 'stderr' ELSE 'stdout' END,
       jr.started_at + n * interval '15 milliseconds',
       '[' || jr.name || '] step ' || n || ': ' || md5(jr.id::text || n)
           || ' compiling module ' || (n %% 97) || ' ok'
FROM job_runs jr, generate_series(1, %(lines)s) n
WHERE jr.run_id = ANY(%(runs)s)
  AND ('x' || substr(md5(jr.id::text), 1, 8))::bit(32)::bigint >= %(archived)s * 4294967296
ORDER BY 4, 1, 2
"""

_NEW_ARTIFACTS = """
INSERT INTO artifacts (run_id, job_run_id, pipeline_id, project_id, path, storage_key,
                       size_bytes, content_sha256, status, expires_at, created_at)
SELECT r.id, jr.id, r.pipeline_id, pl.project_id, 'dist/' || jr.name || '.tar.gz',
       'run/' || r.id || '/job/' || jr.id || '/' || gen_random_uuid(),
       1024 + (r.counter * 7919) %% 100000,
       encode(sha256(convert_to(jr.id::text, 'UTF8')), 'hex'), 'ready',
       jr.finished_at + interval '30 days', jr.finished_at
FROM job_runs jr JOIN stage_runs sr ON sr.id = jr.stage_run_id AND sr.name = 'build'
     JOIN runs r ON r.id = jr.run_id JOIN pipelines pl ON pl.id = r.pipeline_id
WHERE r.id = ANY(%(runs)s)
"""

_FINISH_RECENT = """
UPDATE runs SET status = CASE WHEN counter %% 7 = 0 THEN 'failed' ELSE 'success' END,
                finished_at = coalesce(finished_at, now()) + interval '1 minute'
WHERE id IN (SELECT id FROM runs WHERE NOT (id = ANY(%(runs)s))
             ORDER BY created_at DESC LIMIT %(n)s)
"""


def change_one_percent(dsn: str, spec: FixtureSpec) -> dict[str, Any]:
    """Retire the oldest 1% of runs (stages, jobs, artifacts and log lines go with them by
    cascade), add about 1% new runs with their stages, jobs, artifacts and log lines, finish a
    few recent runs, then VACUUM.  What changed, for the report."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT pipeline_id) FROM runs").fetchone()
        assert row is not None
        total_runs, pipelines = int(row[0]), int(row[1])
        n = max(1, round(total_runs * 0.01))
        lines_before = _count(conn, "log_lines")
        conn.execute(_DELETE_OLDEST, {"n": n})
        lines_after_delete = _count(conn, "log_lines")
        new_runs = [
            r[0]
            for r in conn.execute(_NEW_RUNS, {"per_pipeline": math.ceil(n / pipelines)}).fetchall()
        ]
        params = {
            "runs": new_runs,
            "jobs": spec.jobs_per_stage,
            "lines": spec.log_lines_per_job,
            "archived": spec.archived_share,
            "n": max(1, n // 2),
        }
        for statement in (_NEW_STAGES, _NEW_JOBS, _NEW_LOG_LINES, _NEW_ARTIFACTS, _FINISH_RECENT):
            conn.execute(statement, params)
        conn.commit()
        lines_after = _count(conn, "log_lines")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {
        "runs_before": total_runs,
        "runs_deleted": n,
        "runs_added": len(new_runs),
        "runs_updated": max(1, n // 2),
        "log_lines_before": lines_before,
        "log_lines_deleted": lines_before - lines_after_delete,
        "log_lines_added": lines_after - lines_after_delete,
    }


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    assert row is not None
    return int(row[0])
