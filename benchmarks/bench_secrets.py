"""``secrets check`` and ``rotate`` over 100,000 sealed values, against bare loops of the same
AES-GCM calls over the same blobs held in memory.

    python benchmarks/bench_secrets.py [--repeat 3] [--values 100000]

A small gocdnext-shaped database (``build_gocdnext_fixture``) on embedded PostgreSQL gets
``--values`` more global secrets (``project_id`` NULL, unique names), each a random 16-128
byte plaintext sealed with ``cipher.encrypt`` under one key, written with one COPY. Then:

- the baseline: every ``secrets.value_enc`` read into memory with one SELECT, and a bare loop
  of ``AESGCM(key).decrypt(nonce, rest, None)`` over them (the cipher created once), in
  values per second;
- ``gocdbackup.check_secrets`` (all ten encrypted columns streamed by the driver, one query
  per column, each value trial-decrypted) in values per second, ÷ the bare loop's
  (target ≥ 0.5: higher is better); medians of ``--repeat``, alternating with the bare loop;
- ``gocdbackup.rotate_key`` (not a dry run) from the key to another one and back, alternating,
  end to end (its closing full check under the new key included) in values per second, ÷ a
  bare loop of decrypt-with-old + encrypt-with-new (fresh nonce) over the blobs in memory;
  report only. The time up to the closing check's first value is reported as the re-seal
  phase, the rest as the check;
- for diagnosis, report only: ``check_secrets`` ÷ a bare loop that streams ``secrets`` with
  the check's own query (the blobs alone, same chunk size) and decrypts each value
  (what the check costs beyond the database round trips), and the driver's ``sealed_values``
  stream alone (no decryption).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import _db
from _common import Result, median, ratio, seconds_list, table, timed
from gocdbackup import check_secrets, rotate_key
from gocdbackup.drivers.postgres import GocdnextTables, PostgresServer
from gocdbackup.drivers.postgres.sealed import BATCH_ROWS
from gocdbackup.gocdnext.cipher import encrypt
from gocdbackup.gocdnext.secrets import ENCRYPTED_COLUMNS, fingerprint
from gocdbackup.model.progress import ProgressEvent
from gocdbackup.testing import FixtureSpec, LocalPostgres, build_gocdnext_fixture

DB = "gocdnext_secrets"
VALUES = 100_000
#: the rest of the schema, small: the extra secrets are what is measured
SPEC = FixtureSpec(
    projects=2, pipelines_per_project=1, runs_per_pipeline=2, jobs_per_stage=1, log_lines_per_job=5
)
CHECK_TARGET = 0.5  # check values/s ÷ the bare loop's
COPY_SQL = "COPY secrets (name, value_enc) FROM STDIN"
#: the driver's query for ``secrets.value_enc`` and its chunk size (drivers/postgres/sealed.py)
STREAM_SQL = "SELECT value_enc FROM secrets"
STREAM_CHUNK = BATCH_ROWS
SEED = 13


def _key(rng: random.Random) -> bytes:
    return rng.randbytes(32)


def build(pg: LocalPostgres, key: bytes, values: int) -> dict[str, Any]:
    """The database, its ``values`` extra sealed secrets, vacuumed and checkpointed."""
    rng = random.Random(SEED)
    _db.create_empty(pg, DB)
    dsn = pg.dsn(DB)
    with timed() as t_fixture:
        build_gocdnext_fixture(dsn, SPEC, secret_key=key)
    with timed() as t_seal:
        rows = [
            (f"BENCH_SECRET_{i:06d}", encrypt(key, rng.randbytes(16 + rng.randrange(113))))
            for i in range(values)
        ]
    with timed() as t_copy:
        with psycopg.connect(dsn) as conn, conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
            for row in rows:
                copy.write_row(row)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE secrets")
        _db.checkpoint(dsn)
    return {
        "fixture_seconds": round(t_fixture[0], 3),
        "seal_seconds": round(t_seal[0], 3),
        "copy_seconds": round(t_copy[0], 3),
        "setup_seconds": round(t_fixture[0] + t_seal[0] + t_copy[0], 3),
        "table_bytes": _table_bytes(dsn),
    }


def _table_bytes(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_total_relation_size('secrets')").fetchone()
    assert row is not None
    return int(row[0])


def load_blobs(dsn: str) -> list[bytes]:
    """Every sealed value of ``secrets``, in memory (one SELECT)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT value_enc FROM secrets WHERE value_enc IS NOT NULL").fetchall()
    return [bytes(b) for (b,) in rows]


def bare_check(key: bytes, blobs: Sequence[bytes]) -> float:
    aead = AESGCM(key)
    decrypt = aead.decrypt
    with timed() as t:
        for blob in blobs:
            decrypt(blob[:12], blob[12:], None)
    return t[0]


def bare_rotate(old: bytes, new: bytes, blobs: Sequence[bytes]) -> float:
    decrypt, encrypt_new, urandom = AESGCM(old).decrypt, AESGCM(new).encrypt, os.urandom
    with timed() as t:
        for blob in blobs:
            plaintext = decrypt(blob[:12], blob[12:], None)
            nonce = urandom(12)
            nonce + encrypt_new(nonce, plaintext, None)
    return t[0]


def bare_stream_check(dsn: str, key: bytes) -> tuple[int, float]:
    """The driver's query streamed as the driver streams it (chunks of the same size) and each
    value decrypted in a bare loop: (values, seconds), connecting included."""
    decrypt = AESGCM(key).decrypt
    n = 0
    with timed() as t, psycopg.connect(dsn) as conn, conn.cursor(binary=True) as cur:
        for (blob,) in cur.stream(STREAM_SQL, size=STREAM_CHUNK):
            if blob is not None:
                decrypt(blob[:12], blob[12:], None)
                n += 1
    return n, t[0]


def fetch_only(dsn: str) -> tuple[int, float]:
    """The driver's stream of every sealed value, nothing decrypted: (values, seconds)."""
    data = GocdnextTables(PostgresServer(dsn))
    with timed() as t:
        n = sum(1 for _ in data.sealed_values(ENCRYPTED_COLUMNS))
    return n, t[0]


class _FirstCheck:
    """A progress sink noting when the closing check of a rotation starts (its first report)."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self, event: ProgressEvent) -> None:
        if event.phase == "secrets-check" and self.at is None:
            self.at = time.perf_counter()


def run_check(dsn: str, key: bytes, blobs: Sequence[bytes], repeat: int) -> dict[str, Any]:
    bare: list[float] = []
    stream: list[float] = []
    ours: list[float] = []
    checked = streamed = 0
    for _ in range(repeat):
        bare.append(bare_check(key, blobs))
        streamed, seconds = bare_stream_check(dsn, key)
        stream.append(seconds)
        with timed() as t:
            check = check_secrets(dsn, secret_key=key.hex())
        if not check.passed or check.ok < len(blobs):
            raise RuntimeError(f"the check did not pass: {check.verdict()}")
        checked = check.ok + check.failed + check.empty
        ours.append(t[0])
    return {
        "bare_seconds": bare,
        "bare_stream_seconds": stream,
        "streamed": streamed,
        "check_seconds": ours,
        "checked": checked,
    }


def run_rotate(
    dsn: str, keys: tuple[bytes, bytes], blobs: Sequence[bytes], repeat: int
) -> dict[str, Any]:
    """Rotations there and back (each a full re-seal), alternating with the bare loop; ends on
    the key it started with."""
    bare: list[float] = []
    total: list[float] = []
    reseal: list[float] = []
    rotated = 0
    rounds = repeat + repeat % 2  # an even number: the database ends under the first key
    for n in range(rounds):
        old, new = keys if n % 2 == 0 else keys[::-1]
        # the same work either way: the blobs in memory are sealed with the first key
        bare.append(bare_rotate(keys[0], keys[1], blobs))
        marker = _FirstCheck()
        start = time.perf_counter()
        report = rotate_key(
            dsn,
            secret_key=old.hex(),
            new_secret_key=new.hex(),
            dry_run=False,
            confirm=fingerprint(new),
            progress=marker,
        )
        end = time.perf_counter()
        if report.neither or report.check is None or not report.check.passed:
            raise RuntimeError(f"the rotation failed: {report.describe()}")
        if report.resealed < len(blobs):
            raise RuntimeError(f"resealed {report.resealed:,} values, expected ≥ {len(blobs):,}")
        rotated = report.resealed + report.already + report.empty
        total.append(end - start)
        reseal.append((marker.at or end) - start)
        with psycopg.connect(dsn, autocommit=True) as conn:  # not timed: undo the bloat
            conn.execute("VACUUM ANALYZE")
    checks = [t - r for t, r in zip(total, reseal, strict=True)]
    return {
        "bare_seconds": bare,
        "rotate_seconds": total,
        "reseal_seconds": reseal,
        "closing_check_seconds": checks,
        "rotated": rotated,
    }


def run(
    pg: LocalPostgres, repeat: int, *, values: int = VALUES
) -> tuple[list[Result], dict[str, Any]]:
    """The results, and what was measured."""
    rng = random.Random(SEED + 1)
    key, other = _key(rng), _key(rng)
    built = build(pg, key, values)
    dsn = pg.dsn(DB)
    blobs = load_blobs(dsn)
    print(
        f"  {values:,} global secrets sealed in {built['seal_seconds']:.1f} s, COPY + VACUUM in"
        f" {built['copy_seconds']:.1f} s (fixture {built['fixture_seconds']:.1f} s; setup"
        f" {built['setup_seconds']:.1f} s); secrets table {built['table_bytes'] / 1e6:.1f} MB,"
        f" {len(blobs):,} sealed values read into memory"
    )

    fetched, fetch_s = fetch_only(dsn)
    print(
        f"  driver stream alone (sealed_values, no decryption): {fetched:,} values in"
        f" {fetch_s:.2f} s ({fetched / fetch_s:,.0f} values/s)"
    )

    c = run_check(dsn, key, blobs, repeat)
    bare_rate = len(blobs) / median(c["bare_seconds"])
    check_rate = c["checked"] / median(c["check_seconds"])
    stream_rate = c["streamed"] / median(c["bare_stream_seconds"])
    print(
        f"  bare decrypt loop {seconds_list(c['bare_seconds'])} ({bare_rate:,.0f} values/s);"
        f" bare SELECT + decrypt loop {seconds_list(c['bare_stream_seconds'])}"
        f" ({stream_rate:,.0f} values/s);"
        f" check_secrets {seconds_list(c['check_seconds'])} ({check_rate:,.0f} values/s over"
        f" {c['checked']:,} values)"
    )

    r = run_rotate(dsn, (key, other), blobs, repeat)
    bare_rot_rate = len(blobs) / median(r["bare_seconds"])
    rot_rate = r["rotated"] / median(r["rotate_seconds"])
    reseal_rate = r["rotated"] / median(r["reseal_seconds"])
    print(
        f"  bare decrypt + encrypt loop {seconds_list(r['bare_seconds'])} ({bare_rot_rate:,.0f}"
        f" values/s); rotate_key {seconds_list(r['rotate_seconds'])} ({rot_rate:,.0f} values/s"
        f" end to end), of which re-seal {seconds_list(r['reseal_seconds'])}"
        f" ({reseal_rate:,.0f} values/s) and the closing check"
        f" {seconds_list(r['closing_check_seconds'])}"
    )
    n_check, n_rot = len(c["check_seconds"]), len(r["rotate_seconds"])
    results = [
        Result(
            f"secrets check, {c['checked']:,} values: values/s ÷ a bare AES-GCM decrypt loop's",
            check_rate,
            bare_rate,
            ratio(check_rate, bare_rate),
            unit="values/s",
            target=CHECK_TARGET,
            higher_is_better=True,
            note=f"medians of {n_check}, alternating; check_secrets over a DSN (one streamed"
            f" query per column, all ten columns) vs AESGCM.decrypt over the same blobs in memory;"
            f" stream alone {fetched / fetch_s:,.0f} values/s",
        ),
        Result(
            "secrets check: values/s ÷ a bare streamed SELECT + decrypt loop's (same query)",
            check_rate,
            stream_rate,
            ratio(check_rate, stream_rate),
            unit="values/s",
            note=f"medians of {n_check}, alternating; diagnosis: the check's cost beyond the"
            " database round trips",
        ),
        Result(
            f"key rotation, {r['rotated']:,} values: values/s ÷ a bare decrypt + encrypt loop's",
            rot_rate,
            bare_rot_rate,
            ratio(rot_rate, bare_rot_rate),
            unit="values/s",
            note=f"medians of {n_rot}, there and back; end to end, closing check included"
            f" (median {median(r['closing_check_seconds']):.2f} s)",
        ),
        Result(
            "key rotation, re-seal phase only: values/s ÷ the same bare loop's",
            reseal_rate,
            bare_rot_rate,
            ratio(reseal_rate, bare_rot_rate),
            unit="values/s",
            note="up to the closing check's first value",
        ),
    ]
    meta = {
        "values": values,
        "sealed_values": len(blobs),
        "fixture": {
            "projects": SPEC.projects,
            "pipelines_per_project": SPEC.pipelines_per_project,
            "runs_per_pipeline": SPEC.runs_per_pipeline,
        },
        **built,
        "fetch_only": {"values": fetched, "seconds": round(fetch_s, 3)},
        "check": c,
        "rotate": r,
    }
    return results, meta


def main(argv: list[str] | None = None) -> int:
    import tempfile  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default: %(default)s)")
    parser.add_argument("--values", type=int, default=VALUES, help="default: %(default)s")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="gocdbackup-bench-") as tmp,
        LocalPostgres.start(parent_dir=str(Path(tmp))) as pg,
    ):
        results, _ = run(pg, max(1, args.repeat), values=args.values)
    print(f"\n{table(results)}\n\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
