"""A dump of a gocdnext-shaped database of at least 300 MB streamed from a pod over the
Kubernetes exec path, against a plain local ``pg_dump`` of the same database.

    python benchmarks/bench_kube.py [--repeat 3] [--runs-per-pipeline 150]

The database is built with the PostgreSQL section's fixture (``_db.FULL``, the same size) on
an embedded server of its own; a role ``chart_pg`` (SUPERUSER, with a password) stands for
the Helm chart's database user.  ``FakeKubeAPI`` (a local Kubernetes API server, in a child
process of its own, ``_kube_child.py``, as a real API server is) declares a pod whose exec
commands run there as local processes with ``PATH`` to the embedded server's tools and
``PGHOST``/``PGPORT``/``PGPASSWORD`` of it.  Then,
alternating, each repetition the baseline first:

- the baseline: the embedded server's ``pg_dump --format=custom --compress=0`` run locally
  (``subprocess.Popen``, stdout a pipe), its output read in 1 MiB reads to EOF;
- ours: the same command run in the pod through ``PodProcess`` (the exec websocket of the
  API server, frames read by gocdbackup's client), its stdout read in the same 1 MiB reads to
  EOF, then ``wait()`` must give 0.

Both count the bytes they read and do nothing else with them (no hashing, no file: the
transport alone is measured); both timings include starting the command (a fork, or the
websocket handshake).  Exec wall time ÷ local wall time (target ≤ 1.2, lower is better).  A
dump takes about a second, so each comparison runs ``ROUNDS_PER_REPEAT`` (3) times ``--repeat``
rounds and compares their medians.  The two dumps' sizes are printed (equal, or a few bytes
apart: pg_dump embeds a timestamp), as are, per kind of dump, this process's CPU seconds
(``getrusage``: the client's side only, the fake API server is another process) and of these
the reading thread's (``time.thread_time``: gocdbackup's exec client, or the pipe reads),
and its peak RSS (``VmHWM``, reset before each dump; report only, as a ratio).

Report only: ``GocdBackup.backup(KubeExecPostgres(...))`` (SQL over a port-forward tunnel,
pg_dump in the pod over exec) ÷ ``GocdBackup.backup(dsn)`` of the same database, each into a
fresh repository (``init`` not timed, scrypt N = 2**14), alternating, the same number of
rounds, medians compared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import attrs
import psycopg
from kubernetes import client
from psycopg import sql
from psycopg.conninfo import make_conninfo

import _db
from _common import MB, Result, median, ratio, seconds_list, table, timed
from _rss import reset_peak, status_kib
from gocdbackup import GocdBackup
from gocdbackup.drivers.gocdnext_fixture import FixtureSpec
from gocdbackup.drivers.kube import kube_client
from gocdbackup.drivers.kube.exec import PodProcess
from gocdbackup.drivers.kube.postgres import KubeExecPostgres
from gocdbackup.testing import LocalPostgres

DB = "gocdnext_kube"
NS, POD, CONTAINER = "gocdnext", "prod-gocdnext-postgres-0", "postgres"
#: the chart's database user (its development database runs as a superuser)
CHART_USER = "chart_pg"
SPEC = _db.FULL
TARGET = 1.2  # exec dump wall time ÷ local pg_dump's
READ = 1 << 20
DUMP_ARGS = ["--format=custom", "--compress=0"]
#: rounds of each comparison per ``--repeat`` (a dump of the database takes about a second)
ROUNDS_PER_REPEAT = 3
SCRYPT_N = 2**14


def build(pg: LocalPostgres, spec: FixtureSpec) -> tuple[int, float]:
    """The database (same fixture as the PostgreSQL section's): its size and build time."""
    with timed() as t:
        size = _db.build(pg, DB, spec)
    return size, t[0]


def create_role(pg: LocalPostgres, password: str) -> None:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} SUPERUSER LOGIN PASSWORD {}").format(
                sql.Identifier(CHART_USER), sql.Literal(password)
            )
        )


def drain(stream: IO[bytes]) -> int:
    """Read ``stream`` to EOF in 1 MiB reads: the bytes read."""
    n = 0
    read = stream.read
    while chunk := read(READ):
        n += len(chunk)
    return n


def _tail(err: IO[bytes]) -> str:
    err.seek(0)
    return "\n".join(err.read().decode(errors="replace").strip().splitlines()[-5:])


def local_dump(pg: LocalPostgres) -> tuple[int, float]:
    """The embedded server's pg_dump run here: (bytes, seconds)."""
    argv = [str(pg.bindir / "pg_dump"), *DUMP_ARGS, f"--dbname={pg.dsn(DB)}"]
    with tempfile.TemporaryFile() as err:
        with timed() as t:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
            assert proc.stdout is not None
            with proc.stdout:
                n = drain(proc.stdout)
            code = proc.wait()
        if code != 0:
            raise RuntimeError(f"local pg_dump exited with {code}: {_tail(err)}")
    return n, t[0]


def exec_dump(api: client.ApiClient) -> tuple[int, float]:
    """The same pg_dump run in the pod over exec: (bytes, seconds)."""
    conninfo = make_conninfo(dbname=DB, user=CHART_USER)
    argv = ["pg_dump", *DUMP_ARGS, f"--dbname={conninfo}"]
    with tempfile.TemporaryFile() as err:
        with timed() as t:
            proc = PodProcess(api, NS, POD, CONTAINER, argv, stdin=False, stdout=True, stderr=err)
            assert proc.stdout is not None
            n = drain(proc.stdout)
            code = proc.wait()
        if code != 0:
            raise RuntimeError(f"pg_dump in the pod exited with {code}: {_tail(err)}")
    return n, t[0]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_KEYS = ("seconds", "cpu_seconds", "reader_cpu_seconds", "peak_rss_kib")


def _measured(fn: Callable[[], tuple[int, float]], into: dict[str, list[Any]]) -> int:
    """``fn()``'s wall time, this process's CPU time and peak RSS in KiB (when the peak can be
    reset) appended to ``into``; the bytes it read."""
    can = reset_peak()
    cpu, mine = _cpu(), time.thread_time()
    n, seconds = fn()
    into["seconds"].append(seconds)
    into["cpu_seconds"].append(round(_cpu() - cpu, 3))
    into["reader_cpu_seconds"].append(round(time.thread_time() - mine, 3))
    if can:
        into["peak_rss_kib"].append(status_kib("VmHWM"))
    return n


def run_dumps(pg: LocalPostgres, api: client.ApiClient, rounds: int) -> dict[str, Any]:
    local: dict[str, list[Any]] = {key: [] for key in _KEYS}
    ours: dict[str, list[Any]] = {key: [] for key in _KEYS}
    local_bytes = exec_bytes = 0
    for _ in range(rounds):
        local_bytes = _measured(lambda: local_dump(pg), local)
        exec_bytes = _measured(lambda: exec_dump(api), ours)
    return {"local": {**local, "bytes": local_bytes}, "exec": {**ours, "bytes": exec_bytes}}


def run_backups(
    pg: LocalPostgres, kubeconfig: Path, chart_password: str, workdir: Path, rounds: int
) -> dict[str, Any]:
    """``GocdBackup.backup`` of a DSN, then of the pod, each into a fresh repository."""
    password = secrets.token_urlsafe(24)  # the repositories' passphrase: never printed
    local: list[float] = []
    ours: list[float] = []
    sizes: dict[str, int] = {}
    for n in range(rounds):
        for kind in ("local", "kube"):
            repo_dir = workdir / f"repo-kube-{kind}-{n}"
            gb = GocdBackup.init(f"file://{repo_dir}", password=password, scrypt_n=SCRYPT_N)
            if kind == "local":
                with timed() as t:
                    backup = gb.backup(pg.dsn(DB))
                local.append(t[0])
            else:
                api = kube_client(kubeconfig=str(kubeconfig))
                with (
                    KubeExecPostgres(
                        api, NS, POD, CONTAINER, dbname=DB, user=CHART_USER, password=chart_password
                    ) as db,
                    timed() as t,
                ):
                    backup = gb.backup(db)
                ours.append(t[0])
            sizes[f"{kind}_dump_bytes"] = backup.size_bytes
            sizes[f"{kind}_dump_seconds"] = round(backup.timings.dump_seconds, 3)
            shutil.rmtree(repo_dir, ignore_errors=True)
    return {"local_seconds": local, "kube_seconds": ours, **sizes}


def _mib(kib: list[int]) -> str:
    return f"{max(kib) / 1024:.0f} MiB" if kib else "n/a"


@contextmanager
def fake_api(pod: dict[str, Any]) -> Iterator[None]:
    """The fake Kubernetes API server in a child process (``_kube_child.py``), serving
    ``pod`` until the context is left."""
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_kube_child.py")), json.dumps(pod)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("the fake Kubernetes API server did not start")
        yield
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run(
    pg: LocalPostgres, workdir: Path, repeat: int, *, spec: FixtureSpec = SPEC
) -> tuple[list[Result], dict[str, Any]]:
    """The results, and what was measured."""
    size, build_s = build(pg, spec)
    print(f"  {DB}: {size:,} bytes ({size / MB:.1f} MB) in {build_s:.1f} s")
    if spec == SPEC and size < _db.MIN_FULL_BYTES:
        raise SystemExit(
            f"the benchmark database is only {size:,} bytes; raise the FixtureSpec in"
            " benchmarks/_db.py"
        )
    chart_password = secrets.token_urlsafe(16)
    create_role(pg, chart_password)
    kubeconfig = workdir / "kubeconfig"
    pod = {
        "kubeconfig": str(kubeconfig),
        "namespace": NS,
        "pod": POD,
        "container": CONTAINER,
        "labels": {"app.kubernetes.io/instance": "prod"},
        "env": {
            "PATH": f"{pg.bindir}:{os.environ.get('PATH', '')}",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(pg.port),
            "PGPASSWORD": chart_password,
        },
        "ports": {"5432": ["127.0.0.1", pg.port]},
    }
    with fake_api(pod):
        api = kube_client(kubeconfig=str(kubeconfig))
        rounds = ROUNDS_PER_REPEAT * repeat
        d = run_dumps(pg, api, rounds)
        local, ours = d["local"], d["exec"]
        for label, got in (("local pg_dump", local), ("pg_dump over exec", ours)):
            print(
                f"  {label}: {seconds_list(got['seconds'])}; {got['bytes']:,} bytes"
                f" ({got['bytes'] / MB / median(got['seconds']):.0f} MB/s at the median);"
                f" this process's CPU {median(got['cpu_seconds']):.2f} s, of which the reading"
                f" thread {median(got['reader_cpu_seconds']):.2f} s (medians);"
                f" peak RSS {_mib(got['peak_rss_kib'])}"
            )
        apart = abs(ours["bytes"] - local["bytes"])
        print(f"  the two dumps' sizes differ by {apart:,} bytes")
        if apart > 64:
            raise RuntimeError(
                f"the dumps differ in size: {ours['bytes']:,} over exec, {local['bytes']:,} locally"
            )
        b = run_backups(pg, kubeconfig, chart_password, workdir, rounds)
    local_s, exec_s = median(local["seconds"]), median(ours["seconds"])
    local_b, kube_b = median(b["local_seconds"]), median(b["kube_seconds"])
    print(
        f"  backup(dsn): {seconds_list(b['local_seconds'])} (last: dump phase"
        f" {b['local_dump_seconds']:.2f} s, {b['local_dump_bytes']:,} bytes)"
    )
    print(
        f"  backup(KubeExecPostgres): {seconds_list(b['kube_seconds'])} (last: dump phase"
        f" {b['kube_dump_seconds']:.2f} s, {b['kube_dump_bytes']:,} bytes)"
    )
    results = [
        Result(
            f"pg_dump over Kubernetes exec ({ours['bytes'] / MB:.0f} MB) ÷ local pg_dump",
            exec_s,
            local_s,
            ratio(exec_s, local_s),
            unit="s",
            target=TARGET,
            note=f"medians of {rounds}, alternating; -Fc -Z0 read to nowhere in 1 MiB reads;"
            " fake API server in a child process",
        ),
        Result(
            "backup through KubeExecPostgres ÷ backup(dsn)",
            kube_b,
            local_b,
            ratio(kube_b, local_b),
            unit="s",
            note=f"medians of {rounds}, alternating; fresh repositories",
        ),
    ]
    if ours["peak_rss_kib"] and local["peak_rss_kib"]:
        exec_rss, local_rss = max(ours["peak_rss_kib"]), max(local["peak_rss_kib"])
        results.append(
            Result(
                "peak RSS during the exec dump ÷ during the local dump",
                exec_rss * 1024,
                local_rss * 1024,
                ratio(exec_rss, local_rss),
                unit="B",
                note="this process's VmHWM (the client's side), reset before each",
            )
        )
    meta = {
        "rounds": rounds,
        "db_size_bytes": size,
        "build_seconds": round(build_s, 1),
        "fixture": attrs.asdict(spec),
        "dumps": d,
        "backups": b,
    }
    return results, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default: %(default)s)")
    parser.add_argument(
        "--runs-per-pipeline",
        type=int,
        default=SPEC.runs_per_pipeline,
        help="the fixture's size (default: %(default)s, the ≥ 300 MB database)",
    )
    args = parser.parse_args(argv)
    spec = attrs.evolve(SPEC, runs_per_pipeline=args.runs_per_pipeline)
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="gocdbackup-bench-") as tmp,
        LocalPostgres.start(parent_dir=tmp) as pg,
    ):
        results, _ = run(pg, Path(tmp), max(1, args.repeat), spec=spec)
    print(f"\n{table(results)}\n\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
