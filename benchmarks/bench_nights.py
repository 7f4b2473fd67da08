"""What 30 nights cost: a gocdnext installation simulated night by night, backed up every
night with its artefacts and the guide's retention, against the plain nightly dumps the guide
describes.

    python benchmarks/bench_nights.py [--nights 30]

The database starts as the gocdnext fixture (``FixtureSpec`` below). Each simulated day adds
runs to every pipeline (three stages of jobs, log lines for each job), archives the previous
day's job logs (a gzipped object per job, the lines deleted), uploads one artefact per build
job (random bytes, so nothing compresses or deduplicates by accident), rewrites every ready
cache, and runs the sweeper over artefacts past their time to live (7 days here, so that it
deletes within the 30 nights; gocdnext's default is 30). Every night then runs a backup with
``--artifacts`` (the artefact store is a local directory) and a garbage collection. The
guide's retention (30 daily, then weekly and monthly slots) keeps every one of 30 nightly
backups, so all 30 are kept. (Retention is not run here: it goes by each backup's snapshot
time, which is the database server's real clock, not the simulated nights.)

Reported, after the last night:

- the repository's bytes ÷ (one ``pg_dump -Fc`` of the last night's database + that night's
  new artefacts): what 30 nights cost in units of "one night";
- the database's part of the repository (the stored bytes of every blob a kept backup's dump
  is made of) ÷ one ``pg_dump -Fc``: the guide's 30 plain dumps would be 30 (target ≤ 5);
- the artefacts' part (the stored bytes of every blob a kept backup's artefacts are made of;
  their indexes are reported beside it) ÷ the distinct artefact bytes those backups hold
  (every distinct object live at some night within retention; target ≤ 1.05);
- the last night's backup time ÷ the first night's, and the last garbage collection's ÷ the
  second's.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from _common import MB, Result, ratio, table, timed
from gocdbackup import GocdBackup
from gocdbackup.context import OpContext
from gocdbackup.drivers import gocdnext_fixture
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.gocdnext_fixture import FixtureSpec
from gocdbackup.ops.artifact_index import INDEX_KIND, load_index
from gocdbackup.testing import FakeClock, LocalPostgres

NIGHTS = 30
SPEC = FixtureSpec(
    projects=3, pipelines_per_project=2, runs_per_pipeline=100, jobs_per_stage=2,
    log_lines_per_job=300,
)  # fmt: skip
RUNS_PER_DAY = 4  # per pipeline: 24 runs, 144 jobs, 48 artefacts a day
LOG_LINES = 300
ARTIFACT_BYTES = (20_000, 200_000)
CACHE_BYTES = (40_000, 120_000)
TTL = timedelta(days=7)
DB_TARGET = 5.0
ARTIFACT_TARGET = 1.05
PASSWORD = "bench-nights-" + os.urandom(4).hex()


def _day(
    conn: psycopg.Connection[Any], store: FsspecStore, at: datetime, rnd: random.Random
) -> int:
    """One day of gocdnext at ``at`` (the end of the day); the bytes of the objects it wrote."""
    start = at - timedelta(hours=20)
    conn.execute(
        """INSERT INTO runs (pipeline_id, counter, cause, revisions, status, created_at,
                             started_at, finished_at)
           SELECT pl.id, (SELECT coalesce(max(counter), 0) FROM runs WHERE pipeline_id = pl.id) + k,
                  'webhook', jsonb_build_object('sha', md5(pl.id::text || k || %(at)s::text)),
                  'success', %(start)s + k * interval '3 hours', %(start)s + k * interval '3 hours',
                  %(start)s + k * interval '3 hours' + interval '9 minutes'
           FROM pipelines pl, generate_series(1, %(runs)s) k""",
        {"at": at, "start": start, "runs": RUNS_PER_DAY},
    )
    conn.execute(
        """INSERT INTO stage_runs (run_id, name, ordinal, status, started_at, finished_at)
           SELECT r.id, s.name, s.ord, r.status, r.started_at + s.ord * interval '3 minutes',
                  r.started_at + (s.ord + 1) * interval '3 minutes'
           FROM runs r, (VALUES ('build', 0), ('test', 1), ('deploy', 2)) AS s(name, ord)
           WHERE r.created_at >= %(start)s""",
        {"start": start},
    )
    conn.execute(
        """INSERT INTO job_runs (run_id, stage_run_id, name, status, started_at, finished_at)
           SELECT sr.run_id, sr.id, sr.name || '-' || m, sr.status, sr.started_at, sr.finished_at
           FROM stage_runs sr, generate_series(1, 2) m WHERE sr.started_at >= %(start)s""",
        {"start": start},
    )
    conn.execute(
        """INSERT INTO log_lines (job_run_id, seq, stream, at, text)
           SELECT jr.id, n, 'stdout', jr.started_at + n * interval '15 milliseconds',
                  '[' || jr.name || '] step ' || n || ': ' || md5(jr.id::text || n) || ' ok'
           FROM job_runs jr, generate_series(1, %(lines)s) n WHERE jr.started_at >= %(start)s""",
        {"start": start, "lines": LOG_LINES},
    )
    written = _archive_logs(conn, store, before=start)
    builds = conn.execute(
        """SELECT jr.id, jr.run_id, r.pipeline_id, pl.project_id, jr.name, jr.finished_at
           FROM job_runs jr JOIN stage_runs sr ON sr.id = jr.stage_run_id AND sr.name = 'build'
           JOIN runs r ON r.id = jr.run_id JOIN pipelines pl ON pl.id = r.pipeline_id
           WHERE jr.started_at >= %(start)s""",
        {"start": start},
    ).fetchall()
    for job_id, run_id, pipeline_id, project_id, name, finished in builds:
        data = rnd.randbytes(rnd.randint(*ARTIFACT_BYTES))
        key = f"run/{run_id}/job/{job_id}/{uuid.UUID(int=rnd.getrandbits(128))}"
        store.write(key, data)
        written += len(data)
        conn.execute(
            """INSERT INTO artifacts (run_id, job_run_id, pipeline_id, project_id, path,
                   storage_key, size_bytes, content_sha256, status, expires_at, created_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'ready', %s, %s)""",
            (run_id, job_id, pipeline_id, project_id, f"dist/{name}.tar.gz", key, len(data),
             hashlib.sha256(data).hexdigest(), finished + TTL, finished),
        )  # fmt: skip
    for cache_id, key in conn.execute(
        "SELECT id, storage_key FROM caches WHERE status = 'ready'"
    ).fetchall():
        data = rnd.randbytes(rnd.randint(*CACHE_BYTES))
        store.write(key, data)
        written += len(data)
        conn.execute(
            "UPDATE caches SET size_bytes = %s, content_sha256 = %s, updated_at = %s WHERE id = %s",
            (len(data), hashlib.sha256(data).hexdigest(), at, cache_id),
        )
    for art_id, key in conn.execute(  # the sweeper
        "SELECT id, storage_key FROM artifacts WHERE expires_at < %s AND pinned_at IS NULL",
        (at,),
    ).fetchall():
        store.delete(key)
        conn.execute("DELETE FROM artifacts WHERE id = %s", (art_id,))
    return written


def _archive_logs(conn: psycopg.Connection[Any], store: FsspecStore, *, before: datetime) -> int:
    """The logs of the jobs of the day before ``before``: one gzipped object each, lines
    deleted (the fixture's own unarchived jobs keep their lines)."""
    written = 0
    jobs = conn.execute(
        "SELECT id, finished_at FROM job_runs WHERE logs_archive_uri IS NULL"
        " AND finished_at < %s AND finished_at >= %s",
        (before, before - timedelta(days=1)),
    ).fetchall()
    for job_id, finished in jobs:
        lines = conn.execute(
            "SELECT text FROM log_lines WHERE job_run_id = %s ORDER BY seq", (job_id,)
        ).fetchall()
        data = gzip.compress("\n".join(t for (t,) in lines).encode(), mtime=0)
        key = f"logs/{job_id}.log.gz"
        store.write(key, data)
        written += len(data)
        conn.execute(
            "UPDATE job_runs SET logs_archive_uri = %s, logs_archived_at = %s WHERE id = %s",
            (key, finished + timedelta(minutes=1), job_id),
        )
        conn.execute("DELETE FROM log_lines WHERE job_run_id = %s", (job_id,))
    return written


def _stored(gb: GocdBackup) -> tuple[int, int, int, int]:
    """Stored bytes of the blobs the kept backups' dumps, artefact indexes and artefacts are
    made of, and the distinct artefact bytes (by key and SHA-256) those backups hold."""
    repo = gb.repository
    parts: dict[str, dict[str, int]] = {"db": {}, "index": {}, "objects": {}}
    distinct: dict[tuple[str, str], int] = {}
    for backup in gb.list_backups():
        for component in backup.components:
            part = parts["index" if component.kind == INDEX_KIND else "db"]
            for c in component.chunks:
                part[c.blob_id] = c.stored_bytes
        index = load_index(repo, backup, OpContext())
        if index is None:
            continue
        for entry in index.entries:
            for c in entry.chunks:
                parts["objects"][c.blob_id] = c.stored_bytes
            if entry.chunks:
                distinct[(entry.ref.key, entry.sha256)] = entry.size_bytes
    if set(parts["db"]) & set(parts["objects"]):
        raise RuntimeError("a blob is both the dump's and an artefact's")
    db, index_, objects = (sum(p.values()) for p in parts.values())
    return db, index_, objects, sum(distinct.values())


def _dump_size(pg: LocalPostgres, dsn: str, workdir: Path) -> int:
    out = workdir / "plain.dump"
    subprocess.run(
        [str(Path(pg.bindir) / "pg_dump"), "-Fc", "-f", str(out), "-d", dsn],
        check=True, capture_output=True,
    )  # fmt: skip
    return out.stat().st_size


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def run(workdir: Path, *, nights: int = NIGHTS) -> tuple[list[Result], dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(30)
    with LocalPostgres.start(parent_dir=str(workdir)) as pg:
        gocdnext_fixture.create_database(pg.dsn(), "nights")
        dsn = pg.dsn("nights")
        gocdnext_fixture.build(dsn, SPEC, secret_key=os.urandom(32))
        objects_dir, repo_dir = workdir / "artifacts", workdir / "repository"
        objects_dir.mkdir()
        store = FsspecStore(f"file://{objects_dir}")
        gocdnext_fixture.write_objects(dsn, store)
        t0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        clock = FakeClock(t0, step=timedelta(0))
        gb = GocdBackup.init(f"file://{repo_dir}", password=PASSWORD, clock=clock,
                             pg_bindir=str(pg.bindir), scrypt_n=2**14)  # fmt: skip
        times: list[float] = []
        gc_times: list[float] = []
        written = 0
        for night in range(1, nights + 1):
            at = t0 + timedelta(days=night)
            with psycopg.connect(dsn, autocommit=False) as conn:
                written = _day(conn, store, at, rnd)
            clock.advance(at + timedelta(hours=2) - clock.now())
            with timed() as t:
                gb.backup(dsn, artifacts=f"file://{objects_dir}", label="nightly")
            with timed() as g:
                gb.gc(grace=timedelta(0), dry_run=False)
            times.append(t[0])
            gc_times.append(g[0])
            print(f"  night {night:2d}: {written / MB:5.1f} MB of new objects; backup"
                  f" {t[0]:5.1f} s, gc {g[0]:5.1f} s", flush=True)  # fmt: skip
        dump = _dump_size(pg, dsn, workdir)
        db_stored, index_stored, art_stored, distinct = _stored(gb)
        repo_bytes = _tree_bytes(repo_dir)
        kept = len(gb.list_backups())
    one_night = dump + written
    results = [
        Result(
            f"repository after {nights} nights ÷ (one pg_dump -Fc + one night's new objects)",
            repo_bytes,
            one_night,
            ratio(repo_bytes, one_night),
            unit="B",
            note=f"{kept} backups kept; {repo_bytes / MB:.1f} MB against {dump / MB:.1f} MB"
            f" + {written / MB:.1f} MB",
        ),
        Result(
            f"database part after {nights} nights ÷ one pg_dump -Fc",
            db_stored,
            dump,
            ratio(db_stored, dump),
            unit="B",
            target=DB_TARGET,
            note=f"the guide's {nights} plain nightly dumps: {nights}×",
        ),
        Result(
            "artefact part ÷ distinct artefact bytes held",
            art_stored,
            distinct,
            ratio(art_stored, distinct),
            unit="B",
            target=ARTIFACT_TARGET,
            note="every distinct object (key, SHA-256) live at some kept night; the"
            f" artefact indexes take {index_stored / MB:.1f} MB more",
        ),
        Result(
            f"night {nights} backup ÷ night 1",
            times[-1],
            times[0],
            ratio(times[-1], times[0]),
            unit="s",
            note="night 1 copies every object the fixture started with",
        ),
        Result(
            f"night {nights} garbage collection ÷ night 2",
            gc_times[-1],
            gc_times[1],
            ratio(gc_times[-1], gc_times[1]),
            unit="s",
            note=f"it reads every kept backup's manifest and artefact index ({nights} then 2)",
        ),
    ]
    meta = {"nights": nights, "times": times, "gc_times": gc_times, "repo_bytes": repo_bytes,
            "dump": dump, "db_stored": db_stored, "index_stored": index_stored,
            "art_stored": art_stored, "distinct": distinct}  # fmt: skip
    return results, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=NIGHTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-nights-") as tmp:
        results, _ = run(Path(tmp), nights=args.nights)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
