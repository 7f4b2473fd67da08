"""Run every benchmark against one embedded PostgreSQL 18 and print the summary table.

    python benchmarks/run.py [--repeat 3] [--output benchmarks/results/latest.json]
        [--only postgres|restore|lifecycle|artifacts|orphans|secrets|kube|drill|wal|bucket-pit
                |inventory|nights]

``--only lifecycle`` runs just the retention and garbage-collection benchmarks (no database);
``--only artifacts`` just the artefact-store ones (10,000 objects on a moto S3 server, no
database); ``--only orphans`` just the orphan-reconciliation ones (the merge over 1,000,000
keys, a scan of 20,000 objects on a moto S3 server, peak memory at two sizes; no database);
``--only secrets`` just ``secrets check`` and key rotation over 100,000 sealed values (a small
database of its own on a second embedded server); ``--only kube`` just the dump of a
gocdnext-shaped database of at least 300 MB streamed from a fake Kubernetes pod over exec
against a local pg_dump of it, and the backups through either (a database of its own on another
embedded server); ``--only drill`` just the restore drill, per step, on the demo's dataset
(against a fixed 60 s target) and on a gocdnext-shaped database of at least 300 MB (against a
plain restore of the same backup; both on another embedded server); ``--only wal`` just WAL
push (one process per segment, as archive_command runs it) against ``cp`` of the same real
segments; ``--only inventory`` just an orphan scan of 1,000,000 keys from an S3 inventory
against the same scan listing the bucket; ``--only nights`` 30 simulated nights of gocdnext
backed up nightly (own embedded server); ``--only bucket-pit`` just a versioned bucket of
10,000 versions on moto S3 rolled back to a point in time, against ``s3-pit-restore`` on its
twin (no database); ``--only postgres`` the PostgreSQL ones; ``--only restore`` just the
restores (against ``pg_restore -j2`` on the gocdnext-shaped database and on one large table
with two indexes, each phase's time, and peak memory at two sizes).
By default everything runs; a partial run writes to ``results/latest-<section>.json`` unless
``--output`` says otherwise, so it never overwrites the full run's ``latest.json``.

Each benchmark compares against a baseline measured in this same run (plain pg_dump and
pg_restore with the same binaries, the same pg_dump run locally rather than in a pod, s5cmd
or rclone copying the same objects, s3fs listing the same bucket, a bare loop of the same
AES-GCM calls over the same values in memory, a plain restore of the same backup,
s3-pit-restore rolling back a twin of the same bucket, or the same measurement at another
size), except the demo dataset's drill, against a fixed 60 s target; nothing asserts a
wall-clock limit.
Targets are reported as met or not, and the exit status stays 0 either way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

import _db
import bench_artifacts
import bench_backup
import bench_bucket_pit
import bench_dedup
import bench_drill
import bench_inventory
import bench_kube
import bench_lifecycle
import bench_memory
import bench_nights
import bench_orphans
import bench_restore
import bench_secrets
import bench_wal
from _common import MB, Result, table, timed
from gocdbackup.testing import LocalPostgres

FULL_DB = "gocdnext"
HALF_DB = "gocdnext_half"
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "latest.json"
SECTIONS = (
    "postgres",
    "lifecycle",
    "artifacts",
    "orphans",
    "secrets",
    "kube",
    "drill",
    "wal",
    "bucket-pit",
    "inventory",
    "nights",
)
#: ``--only restore``: the PostgreSQL section's databases and backup, then only the restores
CHOICES = (*SECTIONS, "restore")


def _section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run_all(
    workdir: Path, repeat: int, sections: tuple[str, ...] = SECTIONS
) -> tuple[list[Result], dict[str, Any]]:
    results: list[Result] = []
    meta: dict[str, Any] = {"sections": list(sections)}
    if "postgres" in sections or "restore" in sections:
        pg_results, pg_meta = run_postgres(workdir, repeat, only_restore="postgres" not in sections)
        results += pg_results
        meta.update(pg_meta)
    if "lifecycle" in sections:
        _section("6. retention over 10,000 backups, GC over 1,000,000 blobs (memory store)")
        results += bench_lifecycle.run(repeat)
        meta["lifecycle"] = {
            "backups": bench_lifecycle.BACKUPS,
            "policy": bench_lifecycle.POLICY.to_dict(),
            "blobs": bench_lifecycle.BLOBS,
            "manifests": bench_lifecycle.MANIFESTS,
        }
    if "artifacts" in sections:
        _section(
            f"7. artefact store: {bench_artifacts.OBJECTS:,} objects on moto S3, full backup"
            f" (also with --shards {bench_artifacts.SHARDS}), incremental backup, restore"
        )
        art_results, art_meta = bench_artifacts.run(workdir)
        results += art_results
        meta["artifacts"] = art_meta
    if "orphans" in sections:
        _section(
            f"8. orphan reconciliation: merge over {bench_orphans.ENTRIES:,} keys, scan of"
            f" {bench_orphans.OBJECTS:,} objects on moto S3, peak RSS at"
            f" {' and '.join(f'{n:,}' for n in bench_orphans.RSS_ENTRIES)} keys"
        )
        orph_results, orph_meta = bench_orphans.run(workdir, repeat)
        results += orph_results
        meta["orphans"] = orph_meta
    if "secrets" in sections:
        _section(
            f"9. secrets check and key rotation over {bench_secrets.VALUES:,} sealed values vs"
            " bare AES-GCM loops"
        )
        with LocalPostgres.start(parent_dir=str(workdir)) as pg:
            sec_results, sec_meta = bench_secrets.run(pg, repeat)
        results += sec_results
        meta["secrets"] = sec_meta
    if "kube" in sections:
        _section(
            "10. kube: pg_dump of the ≥ 300 MB database over Kubernetes exec (fake API server)"
            " vs a local pg_dump, and backups through either"
        )
        with LocalPostgres.start(parent_dir=str(workdir)) as pg:
            kube_results, kube_meta = bench_kube.run(pg, workdir, repeat)
        results += kube_results
        meta["kube"] = kube_meta
    if "drill" in sections:
        _section(
            "11. restore drill, per step: the demo's dataset (target < 60 s) and the ≥ 300 MB"
            " database vs a plain restore of the same backup"
        )
        with LocalPostgres.start(parent_dir=str(workdir)) as pg:
            drill_results, drill_meta = bench_drill.run(pg, workdir, repeat)
        results += drill_results
        meta["drill"] = drill_meta
    if "wal" in sections:
        _section("12. WAL push (archive_command) vs cp, on real segments")
        wal_results, wal_meta = bench_wal.run(workdir, repeat)
        results += wal_results
        meta["wal"] = wal_meta
    if "bucket-pit" in sections:
        _section(
            f"13. bucket point in time: a versioned bucket of {bench_bucket_pit.VERSIONS:,}"
            " versions on moto S3 rolled back (dry run + rollback) vs s3-pit-restore"
        )
        pit_results, pit_meta = bench_bucket_pit.run(workdir)
        results += pit_results
        meta["bucket_pit"] = pit_meta
    if "inventory" in sections:
        _section(
            f"14. orphan scan of {bench_inventory.KEYS:,} keys from an S3 inventory vs listing"
            " the bucket"
        )
        inv_results, inv_meta = bench_inventory.run(workdir)
        results += inv_results
        meta["inventory"] = inv_meta
    if "nights" in sections:
        _section(
            f"15. {bench_nights.NIGHTS} nights of gocdnext backed up nightly with artefacts and"
            " the guide's retention, against plain dumps"
        )
        night_results, night_meta = bench_nights.run(workdir / "nights")
        results += night_results
        meta["nights"] = night_meta
    return results, meta


def run_postgres(
    workdir: Path, repeat: int, *, only_restore: bool = False
) -> tuple[list[Result], dict[str, Any]]:
    # the repository passphrase lives only in this variable and in the memory benchmark's
    # child environment; it is never printed or written out
    password = secrets.token_urlsafe(24)
    meta: dict[str, Any] = {}
    with LocalPostgres.start(parent_dir=str(workdir)) as pg:
        _section("building the databases")
        with timed() as t:
            size_full = _db.build(pg, FULL_DB, _db.FULL)
        print(f"  {FULL_DB}: {size_full:,} bytes ({size_full / MB:.1f} MB) in {t[0]:.1f} s")
        if size_full < _db.MIN_FULL_BYTES:
            raise SystemExit(
                f"the benchmark database is only {size_full:,} bytes; "
                f"raise the FixtureSpec in benchmarks/_db.py"
            )
        with timed() as t:
            size_half = _db.build(pg, HALF_DB, _db.HALF)
        print(f"  {HALF_DB}: {size_half:,} bytes ({size_half / MB:.1f} MB) in {t[0]:.1f} s")
        meta.update(
            db_size_bytes=size_full,
            half_db_size_bytes=size_half,
            fixture_full=attrs.asdict(_db.FULL),
            fixture_half=attrs.asdict(_db.HALF),
            pg_bindir=str(pg.bindir),
        )

        _section("1+4. backup vs pg_dump -Fc")
        backed = bench_backup.run(
            pg, FULL_DB, workdir, password, repeat=1 if only_restore else repeat
        )
        results = [] if only_restore else list(backed.results)
        meta.update(dump_bytes=backed.backup.size_bytes, repeat=repeat)

        _section(
            "2. restore vs pg_restore -j2: the gocdnext-shaped database, one large table with"
            " two indexes; peak RSS of a restore at two sizes"
        )
        results += bench_restore.run(
            pg, backed.gb, backed.backup, backed.dump_path, HALF_DB, password, repeat=repeat
        )
        backed.dump_path.unlink()
        if only_restore:
            return results, meta

        _section("3. peak RSS of the backup process at two sizes")
        results += bench_memory.run(
            pg.dsn(FULL_DB),
            size_full,
            pg.dsn(HALF_DB),
            size_half,
            workdir,
            password,
            repeat=repeat,
        )
        _db.drop(pg, HALF_DB)

        _section("5. dedup after ~1% of the runs changed")
        dedup_results, changes = bench_dedup.run(
            backed.gb, backed.backup, pg.dsn(FULL_DB), _db.FULL
        )
        results += dedup_results
        meta["changes"] = changes
    return results, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"where to write the results as JSON (default: {DEFAULT_OUTPUT}, or"
        " latest-<section>.json beside it with --only)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="repetitions of each timed comparison; medians are compared (default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        choices=CHOICES,
        help="run only the PostgreSQL benchmarks (1-5), the lifecycle ones (6), the"
        " artefact-store ones (7), the orphan-reconciliation ones (8), the secrets ones (9),"
        " the Kubernetes exec ones (10), the restore drill ones (11), WAL push (12), the bucket"
        " point in time (13), or only the restores (2)",
    )
    args = parser.parse_args(argv)
    sections = (args.only,) if args.only else SECTIONS
    output: Path = args.output or (
        DEFAULT_OUTPUT.with_name(f"latest-{args.only}.json") if args.only else DEFAULT_OUTPUT
    )
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="gocdbackup-bench-") as tmp:
        results, meta = run_all(Path(tmp), max(1, args.repeat), sections)
    total = time.perf_counter() - started

    db = f"database {meta['db_size_bytes'] / MB:.1f} MB, " if "db_size_bytes" in meta else ""
    _section(f"summary ({db}total {total:.0f} s)")
    print(table(results))
    report = {
        "started_at": started_at.isoformat(),
        "total_seconds": round(total, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        **meta,
        "results": [r.as_json() for r in results],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
