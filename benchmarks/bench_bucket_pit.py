"""A versioned bucket rolled back to a point in time: ``restore_store_to_time`` against
``s3-pit-restore`` 0.9 (PyPI), each on its own copy of the same 10,000-version bucket on a moto
S3 server.

    python benchmarks/bench_bucket_pit.py [--versions 10000]

The bucket is shaped like gocdnext's artefact store (``run/<run>/job/<job>/<uuid>`` keys,
100-2,000 bytes each): 60% of the versions are objects written before the instant T; then,
more than a whole second after T (moto stamps ``LastModified`` to the second, so the run
sleeps past the next whole second before taking T and again after it), 10% are overwrites of
some of those keys with other bytes, 5% delete markers on others (``DeleteObjects``) and 25%
new keys.  At 10,000 versions: 6,000 keys at T; 1,000 overwritten, 500 deleted and 2,500
created after it.

Two buckets are written at once, request for request, so they share T and differ only in
their version ids: one for each tool, each on its own ``moto_server`` (out of process, on
127.0.0.1, as in ``bench_artifacts.py``).  One bucket used twice would not be the same work: a
bucket already rolled back holds 4,000 more versions and markers (a longer listing for the
second tool) and already holds what it held at T (its end state would prove nothing).  One
server per bucket, because a server runs on one core (its Python threads share one lock): two
are written at once on two cores, and each tool then meets an idle server holding just its
bucket.  The objects are written with http.client, each PUT signed by botocore's signer:
boto3's request pipeline costs more than half as much CPU per request in the client as moto
does in the server, and writing both buckets through it into one server took 90 s here
rather than about 55.

- ours: ``restore_store_to_time(dry_run=True)`` for the plan's id, then
  ``restore_store_to_time(dry_run=False, confirm=<id>)``, in this process, ``transfers=32``;
  both calls are timed together, as a user runs both (each lists every version: the second
  plans afresh to check the id);
- s3-pit-restore: ``python s3-pit-restore -b B -B B -t T --max-workers 32`` in a subprocess
  (boto3 reaches moto through ``AWS_ENDPOINT_URL``), so its time includes starting Python and
  importing boto3 (measured apart and reported).  With ``-B`` equal to ``-b`` and no ``-P`` it
  copies every key live at T onto itself (``CopyObject`` of that ``VersionId``, even where it
  is current already) and, after that, deletes (one ``DeleteObject`` each) the keys none of
  whose versions is at or before T.  It is the script from its sdist, run with this
  interpreter: installed beside it (``nox -s bench`` installs it), else fetched with
  ``pip download`` into the work directory (its ``setup.py`` imports ``distutils``, gone from
  Python 3.12, and the script needs only boto3 and python-dateutil, which moto brings).

Both end states are checked against the bucket's content at T: the current objects' keys and
ETags (MD5 of the bytes, kept by a server-side copy) from a plain listing.  Ours must match (it
raises otherwise); s3-pit-restore's is reported as it is, exact or not.  moto spends
milliseconds of CPU per request on one core, so both are bound by the requests they send: each
run's requests are counted from its server's log, with that server's CPU.  Listing is where
moto differs most from S3: for every page of ``ListObjectVersions`` it deep-copies every
version of the bucket, so at 10,000 versions a page of 1,000 costs moto as much CPU as a few
hundred copies, and a whole listing grows with the square of the versions (on S3 it is 10
requests); the output shows each tool's listing requests apart, and an estimate of both
times without them.  One run each (writing the buckets costs more than both
rollbacks); ``--repeat`` does not apply.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import importlib.metadata
import math
import os
import random
import subprocess
import sys
import tarfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import Result, ratio, table, timed
from bench_artifacts import S3_ENV, Moto, Phase, _uuid
from gocdbackup import restore_store_to_time

VERSIONS = 10_000
#: shares of the versions: keys written before T, then overwritten, deleted, created after it
BEFORE, OVERWRITTEN, DELETED = 0.60, 0.10, 0.05
SIZES = (100, 2000)
OBJECTS_PER_JOB = 5
JOBS_PER_RUN = 2
SEED = 23
TRANSFERS = 32
#: the issue: "on the same 10,000-version bucket in one run: target ≤ 0.2 x its wall time"
TARGET = 0.2
#: concurrent PUTs while writing the buckets (not measured)
WRITERS = 16
BUCKETS = ("pit-ours", "pit-spr")

SPR = "s3-pit-restore"
SPR_VERSION = "0.9"


# -- the workload -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """Each key's bytes before T; the puts (overwrites and new keys) and deletes after it."""

    before: dict[str, bytes]
    after: dict[str, bytes]
    deleted: list[str]

    @property
    def versions(self) -> int:
        return len(self.before) + len(self.after) + len(self.deleted)

    def at_t(self) -> dict[str, str]:
        """Key -> ETag of every object live at T."""
        return {k: f'"{hashlib.md5(v).hexdigest()}"' for k, v in self.before.items()}


def _keys(rng: random.Random, n: int) -> list[str]:
    """``n`` keys as gocdnext keys artefacts: ``run/<run_id>/job/<job_run_id>/<uuid>``."""
    out = []
    run_id = job_id = ""
    for i in range(n):
        if i % (OBJECTS_PER_JOB * JOBS_PER_RUN) == 0:
            run_id = _uuid(rng)
        if i % OBJECTS_PER_JOB == 0:
            job_id = _uuid(rng)
        out.append(f"run/{run_id}/job/{job_id}/{_uuid(rng)}")
    return out


def make_workload(versions: int, *, seed: int = SEED) -> Workload:
    rng = random.Random(seed)

    def data() -> bytes:
        return rng.randbytes(rng.randint(*SIZES))

    n_before = round(versions * BEFORE)
    n_over, n_del = round(versions * OVERWRITTEN), round(versions * DELETED)
    n_new = versions - n_before - n_over - n_del
    before = {k: data() for k in _keys(rng, n_before)}
    touched = rng.sample(sorted(before), n_over + n_del)
    # overwrites with other bytes (equal bytes would be "unchanged" for ours, not for theirs)
    after = {k: data() for k in touched[:n_over]}
    after.update((k, data()) for k in _keys(rng, n_new))
    return Workload(before=before, after=after, deleted=sorted(touched[n_over:]))


def s3_client(endpoint: str) -> Any:
    import boto3  # noqa: PLC0415 - moto[server] brings it; only the benchmark needs it
    from botocore.config import Config  # noqa: PLC0415

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_ENV["AWS_DEFAULT_REGION"],
        config=Config(max_pool_connections=WRITERS),
    )


def _put(moto: Moto, bucket: str, key: str, body: bytes) -> None:
    """One PutObject, signed by botocore's SigV4 signer and sent with http.client (boto3's
    request pipeline costs as much CPU as moto does; unsigned, moto refuses overwrites)."""
    from botocore.auth import S3SigV4Auth  # noqa: PLC0415 - moto[server] brings botocore
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415
    from botocore.credentials import Credentials  # noqa: PLC0415

    path = f"/{bucket}/{urllib.parse.quote(key)}"
    request = AWSRequest(method="PUT", url=f"{moto.endpoint}{path}", data=body)
    credentials = Credentials(S3_ENV["AWS_ACCESS_KEY_ID"], S3_ENV["AWS_SECRET_ACCESS_KEY"])
    S3SigV4Auth(credentials, "s3", S3_ENV["AWS_DEFAULT_REGION"]).add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", moto.port, timeout=120)
    try:
        conn.request("PUT", path, body=body, headers=dict(request.headers))
        answer = conn.getresponse()
        answer.read()
    finally:
        conn.close()
    if answer.status != 200:
        raise RuntimeError(f"PUT {bucket}/{key}: HTTP {answer.status}")


def _put_all(servers: dict[str, Moto], objects: dict[str, bytes]) -> None:
    with ThreadPoolExecutor(WRITERS) as pool:
        futures = [
            pool.submit(_put, moto, bucket, k, v)
            for k, v in objects.items()
            for bucket, moto in servers.items()
        ]
        for f in futures:
            f.result()


def _delete_all(clients: dict[str, Any], keys: list[str]) -> None:
    for bucket, client in clients.items():
        for start in range(0, len(keys), 1000):
            objects = [{"Key": k} for k in keys[start : start + 1000]]
            answer = client.delete_objects(
                Bucket=bucket, Delete={"Objects": objects, "Quiet": True}
            )
            if answer.get("Errors"):
                raise RuntimeError(f"deleting from {bucket}: {answer['Errors'][:3]}")


def _past_next_second() -> None:
    now = time.time()
    time.sleep(math.floor(now) + 1 - now + 0.05)


def build(servers: dict[str, Moto], clients: dict[str, Any], work: Workload) -> datetime:
    """Write ``work`` into each bucket (new, versioned) of ``servers``; the instant T."""
    for bucket, client in clients.items():
        client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    _put_all(servers, work.before)
    _past_next_second()
    at = datetime.now(UTC)
    _past_next_second()
    _put_all(servers, work.after)
    _delete_all(clients, work.deleted)
    return at


def current(client: Any, bucket: str) -> dict[str, str]:
    """Key -> ETag of every current object."""
    out: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out.update((o["Key"], o["ETag"]) for o in page.get("Contents", []))
    return out


def differences(got: dict[str, str], want: dict[str, str]) -> dict[str, int]:
    """How the current objects differ from those live at T (all zero: exactly T)."""
    return {
        "missing": sum(1 for k in want if k not in got),
        "extra": sum(1 for k in got if k not in want),
        "other_bytes": sum(1 for k, etag in want.items() if k in got and got[k] != etag),
    }


def differences_text(diff: dict[str, int], keys: int) -> str:
    if not any(diff.values()):
        return f"exactly the {keys:,} objects live at T"
    return (
        f"NOT the state at T: {diff['missing']:,} keys live at T missing, {diff['extra']:,}"
        f" keys that did not exist at T still there, {diff['other_bytes']:,} with other bytes"
    )


# -- s3-pit-restore -----------------------------------------------------------------------------


def locate_spr(workdir: Path) -> tuple[Path, str]:
    """The ``s3-pit-restore`` script and where it came from.  Installed beside this
    interpreter (``nox -s bench``), else its sdist fetched with ``pip download``: the sdist is
    the script and a distutils ``setup.py`` (Python 3.12 has no distutils), and the script
    needs only boto3 and python-dateutil, so it runs from the unpacked sdist as is."""
    beside = Path(sys.executable).with_name(SPR)
    if beside.exists():
        try:
            version = importlib.metadata.version(SPR)
        except importlib.metadata.PackageNotFoundError:
            version = "(version unknown)"
        return beside, f"{SPR} {version}, installed"
    dest = workdir / "spr"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            f"{SPR}=={SPR_VERSION}",
            "-d",
            str(dest),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    sdists = sorted(dest.glob(f"{SPR}-*.tar.gz")) if dest.exists() else []
    if proc.returncode != 0 or not sdists:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"pip download {SPR}=={SPR_VERSION} failed: {tail}")
    with tarfile.open(sdists[0]) as tar:
        member = tar.extractfile(f"{SPR}-{SPR_VERSION}/{SPR}")
        if member is None:
            raise RuntimeError(f"{sdists[0].name} holds no {SPR} script")
        script = dest / SPR
        script.write_bytes(member.read())
    return script, f"{SPR} {SPR_VERSION}, from its sdist (pip download)"


def python_start(env: dict[str, str]) -> float:
    """Starting this interpreter and importing what s3-pit-restore imports: best of three."""
    times = []
    for _ in range(3):
        with timed() as t:
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import boto3, botocore, dateutil.parser, s3transfer.manager, unittest",
                ],
                env=env,
                check=True,
            )
        times.append(t[0])
    return min(times)


# -- the benchmark --------------------------------------------------------------------------------


def _requests(*phases: Phase) -> int:
    return sum(sum(p.requests.values()) for p in phases)


def _requests_text(*phases: Phase) -> str:
    total: dict[str, int] = {}
    for p in phases:
        for k, v in p.requests.items():
            method = k.split()[0]
            total[method] = total.get(method, 0) + v
    return ", ".join(f"{k} {v:,}" for k, v in sorted(total.items())) or "none"


def _listings(p: Phase) -> int:
    """The GETs a rollback sent: ListObjectVersions pages and, for ours, settings reads."""
    return sum(v for k, v in p.requests.items() if k.startswith("GET "))


def run(workdir: Path, *, versions: int = VERSIONS) -> tuple[list[Result], dict[str, Any]]:
    """The results, and what was measured."""
    work = workdir / "bucket-pit"
    work.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        servers = {b: stack.enter_context(Moto(work / f"moto-{b}.log")) for b in BUCKETS}
        return _run(servers, work, versions)


def _run(
    servers: dict[str, Moto], work: Path, versions: int
) -> tuple[list[Result], dict[str, Any]]:
    ours_bucket, spr_bucket = BUCKETS
    script, spr_source = locate_spr(work)
    where = ", ".join(f"{b} on {m.endpoint}" for b, m in servers.items())
    print(f"  moto_server: {where}; baseline: {spr_source}")
    clients = {b: s3_client(m.endpoint) for b, m in servers.items()}
    load = make_workload(versions)
    want = load.at_t()
    n_over = len(set(load.after) & set(load.before))
    n_new = len(load.after) - n_over

    with ExitStack() as stack, timed() as t:
        writes = {b: stack.enter_context(m.phase()) for b, m in servers.items()}
        at = build(servers, clients, load)
    # every PUT answered 200 and no DeleteObjects reported an error (or build raised), so the
    # requests moto logged are the versions (listing them would cost as much as a rollback)
    for b, p in writes.items():
        puts, posts = p.requests[f"PUT {b}"], p.requests[f"POST {b}"]
        # + 2: CreateBucket and PutBucketVersioning
        want_requests = (
            len(load.before) + len(load.after) + 2,
            math.ceil(len(load.deleted) / 1000),
        )
        if (puts, posts) != want_requests:
            raise RuntimeError(f"{b}: moto logged {puts} PUTs and {posts} POSTs while writing")
    print(
        f"  2 buckets of {load.versions:,} versions each: {len(load.before):,} keys before T"
        f" ({at.isoformat()}), then {n_over:,} overwritten, {len(load.deleted):,} deleted,"
        f" {n_new:,} created; written in {t[0]:.1f} s (moto CPU"
        f" {' + '.join(f'{p.server_cpu:.1f}' for p in writes.values())} s)"
    )

    # ours: the dry run for the plan's id, then the rollback confirmed by it
    moto = servers[ours_bucket]
    options = {
        "endpoint_url": moto.endpoint,
        "key": S3_ENV["AWS_ACCESS_KEY_ID"],
        "secret": S3_ENV["AWS_SECRET_ACCESS_KEY"],
    }
    url = f"s3://{ours_bucket}"
    with moto.phase() as plan_p:
        planned = restore_store_to_time(
            url, at, dry_run=True, storage_options=options, transfers=TRANSFERS
        )
    with moto.phase() as apply_p:
        done = restore_store_to_time(
            url,
            at,
            dry_run=False,
            confirm=planned.plan.id,
            storage_options=options,
            transfers=TRANSFERS,
        )
    ours = plan_p.wall + apply_p.wall
    ours_diff = differences(current(clients[ours_bucket], ours_bucket), want)
    counts = done.plan.counts()
    expected = {
        "restore": n_over + len(load.deleted),
        "delete": n_new,
        "unchanged": len(load.before) - n_over - len(load.deleted),
    }
    if counts != expected or planned.plan.keys != len(load.before) + n_new:
        raise RuntimeError(
            f"the plan over {planned.plan.keys} keys: {counts}, expected {expected} over"
            f" {len(load.before) + n_new}"
        )
    print(
        f"  ours: {ours:.2f} s = dry run {plan_p.wall:.2f} s + rollback {apply_p.wall:.2f} s;"
        f" plan {planned.plan.id}: {counts}; done {done.done}; client CPU"
        f" {plan_p.client_cpu + apply_p.client_cpu:.1f} s"
    )
    print(
        f"    dry run: {_requests(plan_p):,} requests ({_requests_text(plan_p)}), moto CPU"
        f" {plan_p.server_cpu:.1f} s; rollback: {_requests(apply_p):,} requests"
        f" ({_requests_text(apply_p)}), moto CPU {apply_p.server_cpu:.1f} s"
    )
    print(
        f"    both list every version (the rollback plans afresh to check the id): the dry run,"
        f" {_listings(plan_p)} GETs and nothing else, is {plan_p.wall / ours:.0%} of ours; the"
        f" rollback less a dry run, ≈ its writes: {apply_p.wall - plan_p.wall:.2f} s"
    )
    print(f"    end state: {differences_text(ours_diff, len(want))}")
    if done.failed or any(ours_diff.values()):
        raise RuntimeError(
            f"the rollback failed {len(done.failed)} steps ({list(done.failed.items())[:3]})"
            f" and left {ours_diff} differences from the state at T"
        )

    # s3-pit-restore on the other bucket, onto itself
    moto = servers[spr_bucket]
    env = {**os.environ, **S3_ENV, "AWS_ENDPOINT_URL": moto.endpoint}
    start = python_start(env)
    args = [sys.executable, str(script), "-b", spr_bucket, "-B", spr_bucket]
    args += ["-t", at.isoformat(), "--max-workers", str(TRANSFERS)]
    with moto.phase() as spr_p:
        proc = subprocess.run(args, env=env, cwd=work, capture_output=True, text=True, check=False)
    errors = [line for line in proc.stderr.splitlines() if '"ERROR: ' in line]
    pool_full = sum(1 for line in proc.stderr.splitlines() if "Connection pool is full" in line)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        print(f"  s3-pit-restore exited with {proc.returncode}: {tail}")
    spr_diff = differences(current(clients[spr_bucket], spr_bucket), want)
    print(
        f"  s3-pit-restore: {spr_p.wall:.2f} s (of which ~{start:.2f} s starting Python and"
        f" importing boto3); exit {proc.returncode}, {len(proc.stdout.splitlines()):,} keys"
        f" printed, {len(errors)} errors, {pool_full:,} 'connection pool is full' warnings;"
        f" client CPU {spr_p.client_cpu:.1f} s"
    )
    print(
        f"    {_requests(spr_p):,} requests ({_requests_text(spr_p)}; {_listings(spr_p)} GETs),"
        f" moto CPU {spr_p.server_cpu:.1f} s"
    )
    for line in errors[:3]:
        print(f"    {line}")
    print(f"    end state: {differences_text(spr_diff, len(want))}")

    r = ratio(ours, spr_p.wall)
    ours_moto = plan_p.server_cpu + apply_p.server_cpu
    spr_state = "exact" if not any(spr_diff.values()) else f"NOT exact ({spr_diff})"
    met = "met" if r <= TARGET else "NOT met"
    print(f"  ours ÷ s3-pit-restore: {r:.3f} (target ≤ {TARGET:g}: {met})")
    # an estimate, not a measurement: the dry run is one listing pass (and 6 settings reads);
    # ours lists twice, s3-pit-restore once
    ours_rest, spr_rest = ours - 2 * plan_p.wall, spr_p.wall - plan_p.wall
    print(
        f"    less their listing passes (a dry run's time each, ≈ {plan_p.wall:.1f} s on this"
        f" moto): ours ≈ {ours_rest:.1f} s, s3-pit-restore ≈ {spr_rest:.1f} s, ratio ≈"
        f" {ratio(ours_rest, spr_rest):.2f} (an estimate: moto lists a page of 1,000 versions"
        " in time growing with the bucket's versions, S3 does not)"
    )
    results = [
        Result(
            f"bucket rollback to T ({load.versions:,} versions) ÷ s3-pit-restore",
            ours,
            spr_p.wall,
            r,
            unit="s",
            target=TARGET,
            note=f"one run each, twin buckets on twin moto servers; ours dry run"
            f" {plan_p.wall:.2f} s + rollback {apply_p.wall:.2f} s in process,"
            f" transfers={TRANSFERS}; s3-pit-restore --max-workers {TRANSFERS} in a subprocess"
            f" (~{start:.2f} s of it starting Python and boto3); end states: ours exact,"
            f" s3-pit-restore's {spr_state}",
        ),
        Result(
            "  bucket rollback moto CPU ÷ s3-pit-restore's",
            ours_moto,
            spr_p.server_cpu,
            ratio(ours_moto, spr_p.server_cpu),
            note=f"the server's cost of the requests; ours {_requests(plan_p, apply_p):,}"
            f" ({_requests_text(plan_p, apply_p)}), s3-pit-restore {_requests(spr_p):,}"
            f" ({_requests_text(spr_p)})",
        ),
        Result(
            "  bucket rollback requests ÷ s3-pit-restore's",
            _requests(plan_p, apply_p),
            _requests(spr_p),
            ratio(_requests(plan_p, apply_p), _requests(spr_p)),
            note=f"from moto's log; GETs (ListObjectVersions pages, ours also 6 settings reads"
            f" per call): ours {_listings(plan_p) + _listings(apply_p)}, s3-pit-restore"
            f" {_listings(spr_p)}",
        ),
    ]
    meta = {
        "versions": load.versions,
        "keys_before": len(load.before),
        "overwritten": n_over,
        "deleted": len(load.deleted),
        "created": n_new,
        "time": at.isoformat(),
        "baseline": spr_source,
        "write_seconds": round(t[0], 1),
        "estimate_without_listing_seconds": {
            "ours": round(ours_rest, 2),
            "s3_pit_restore": round(spr_rest, 2),
        },
        "ours": {
            "plan_id": planned.plan.id,
            "counts": counts,
            "done": done.done,
            "failed": len(done.failed),
            "end_state": ours_diff,
        },
        "s3_pit_restore": {
            "exit": proc.returncode,
            "errors": len(errors),
            "pool_full_warnings": pool_full,
            "python_start_seconds": round(start, 3),
            "end_state": spr_diff,
        },
        "phases": {
            **{f"write_{b}": p.as_json() for b, p in writes.items()},
            "ours_dry_run": plan_p.as_json(),
            "ours_rollback": apply_p.as_json(),
            "s3_pit_restore": spr_p.as_json(),
        },
    }
    return results, meta


def main(argv: list[str] | None = None) -> int:
    import tempfile  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--versions",
        type=int,
        default=VERSIONS,
        help="versions and delete markers per bucket (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gocdbackup-bench-") as tmp:
        results, _ = run(Path(tmp), versions=args.versions)
    print(f"\n{table(results)}\n\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
