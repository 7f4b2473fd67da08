"""WAL push against plain ``cp``: can ``archive_command = 'gocdbackup wal push %p ...'`` keep up?

Real segments are made by a server writing rows, archived with ``cp`` into a directory.  Then,
for the same segments, each in its own process as ``archive_command`` runs it: ``cp`` into
another directory (the baseline), and ``gocdbackup wal push`` into a file:// repository (its
passphrase in a file, scrypt N=2^15 as ``init`` makes it).  Reported: segments per second of
each, the ratio of their times, and ``push_wal`` in one process (what the command costs
without starting Python and opening the repository).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from _common import Result, median, ratio, timed
from gocdbackup import GocdBackup
from gocdbackup.ops.wal import push_wal
from gocdbackup.testing import LocalPostgres

SEGMENTS = 24
CLI = [sys.executable, "-m", "gocdbackup.cli"]


def make_segments(workdir: Path) -> list[Path]:
    """At least :data:`SEGMENTS` real WAL segments, archived with cp."""
    archive = workdir / "wal-cp"
    archive.mkdir(mode=0o777)
    archive.chmod(0o777)
    settings = {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": f"cp %p {archive}/%f",
    }
    with (
        LocalPostgres.start(parent_dir=str(workdir), settings=settings) as pg,
        psycopg.connect(pg.dsn(), autocommit=True) as conn,
    ):
        conn.execute("CREATE TABLE t (id bigint, v text)")
        for _ in range(SEGMENTS):
            conn.execute(
                "INSERT INTO t SELECT g, md5(g::text) || repeat('x', 80)"
                " FROM generate_series(1, 60000) g"
            )
            conn.execute("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = sorted(p for p in archive.iterdir() if len(p.name) == 24)
            if len(done) >= SEGMENTS:
                break
            time.sleep(0.2)
    return sorted(p for p in archive.iterdir() if len(p.name) == 24)[:SEGMENTS]


def run(workdir: Path, repeat: int) -> tuple[list[Result], dict[str, object]]:
    segments = make_segments(workdir)
    size = sum(p.stat().st_size for p in segments)
    password = workdir / "password"
    password.write_text("bench-" + os.urandom(8).hex())
    cp_times: list[float] = []
    cli_times: list[float] = []
    lib_times: list[float] = []
    for n in range(repeat):
        target = workdir / f"cp-{n}"
        target.mkdir()
        with timed() as t:
            for seg in segments:
                subprocess.run(["cp", str(seg), str(target / seg.name)], check=True)
        cp_times.append(t[0])
        url = f"file://{workdir}/repo-cli-{n}"
        GocdBackup.init(url, password=password.read_text())
        with timed() as t:
            for seg in segments:
                subprocess.run(
                    [
                        *CLI,
                        "wal",
                        "push",
                        str(seg),
                        "--repo",
                        url,
                        "--password-file",
                        str(password),
                    ],
                    check=True,
                    capture_output=True,
                )
        cli_times.append(t[0])
        gb = GocdBackup.init(f"file://{workdir}/repo-lib-{n}", password=password.read_text())
        with timed() as t:
            for seg in segments:
                push_wal(gb.repository, seg.name, seg.read_bytes(), ctx=gb.context())
        lib_times.append(t[0])
        shutil.rmtree(target)
    cp, cli, lib = median(cp_times), median(cli_times), median(lib_times)
    n = len(segments)
    print(f"  {n} segments, {size / 1e6:.0f} MB")
    print(f"  cp, one process per segment: {n / cp:.1f} segments/s")
    print(f"  gocdbackup wal push, one process per segment: {n / cli:.1f} segments/s")
    print(f"  push_wal in one process: {n / lib:.1f} segments/s")
    results = [
        Result(
            "wal push (one process per segment) ÷ cp, time per segment",
            cli / n,
            cp / n,
            ratio(cli, cp),
            unit="s",
            note=f"medians of {repeat}; {n / cli:.1f} segments/s against {n / cp:.1f}",
        ),
        Result(
            "  push_wal in one process ÷ cp, time per segment",
            lib / n,
            cp / n,
            ratio(lib, cp),
            unit="s",
            note=f"{n / lib:.1f} segments/s",
        ),
    ]
    return results, {"segments": n, "bytes": size}
