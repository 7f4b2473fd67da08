"""``wal stream`` on a real PostgreSQL: nothing installed on the server's side, a replication
slot, every completed segment pushed as it arrives, the partial one at SIGTERM, a clean exit,
and a recovery from the streamed archive."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gocdbackup import GocdBackup, physical_backup, restore_physical, stream_wal, wal_verify
from gocdbackup.drivers.local_server import _system_user
from gocdbackup.errors import PreconditionFailed
from gocdbackup.ops.wal import WAL_KIND
from gocdbackup.testing import LocalPostgres
from tests.conftest import REPO_PASSWORD
from tests.integration.archiving import _reachable_by_others

pytestmark = pytest.mark.integration

PASSWORD = "stream-server-pw"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalPostgres]:
    with LocalPostgres.start(password=PASSWORD, settings={"wal_level": "replica"}) as pg:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE batches (batch int, n int)")
        yield pg


def _switch(pg: LocalPostgres, batch: int) -> str:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("INSERT INTO batches SELECT %s, g FROM generate_series(1, 100) g", (batch,))
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
    assert row is not None
    return str(row[0])


def _streaming(pg: LocalPostgres, slot: str) -> None:
    """Wait until a receiver uses ``slot`` (WAL switched away before that is not streamed)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with psycopg.connect(pg.dsn()) as conn:
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
        if row is not None and row[0]:
            return
        time.sleep(0.2)
    raise AssertionError(f"nothing streams through {slot}")


def _wait_for(gb: GocdBackup, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if name in gb.repository.record_ids(WAL_KIND):
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} was not archived")


def test_the_cli_streams_and_pushes_the_partial_segment_at_sigterm(
    server: LocalPostgres, tmp_path: Path
) -> None:
    url = f"file://{tmp_path}/repo"
    spool = tmp_path / "spool"
    gb = GocdBackup.init(url, password=REPO_PASSWORD, scrypt_n=2**12)
    env = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gocdbackup.cli", "--json", "wal", "stream", "--repo", url,
         "--db", server.dsn(), "--slot", "cli_slot", "--spool", str(spool)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _streaming(server, "cli_slot")
        names = [_switch(server, n) for n in range(3)]
        for name in names:
            _wait_for(gb, name)
        with psycopg.connect(server.dsn(), autocommit=True) as conn:  # into the next segment
            conn.execute("INSERT INTO batches SELECT 99, g FROM generate_series(1, 100) g")
        deadline = time.monotonic() + 30
        while not list(spool.glob("*.partial")) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["segments"] >= 3
    assert report["partial"] is not None
    assert report["partial"] in gb.repository.record_ids(WAL_KIND)
    assert wal_verify(gb).ok
    assert not [p for p in spool.iterdir() if not p.name.endswith(".partial")]
    with psycopg.connect(server.dsn()) as conn:
        slot = conn.execute(
            "SELECT slot_type FROM pg_replication_slots WHERE slot_name = 'cli_slot'"
        ).fetchone()
    assert slot == ("physical",)


def test_a_streamed_archive_recovers_a_physical_backup(server: LocalPostgres) -> None:
    base = Path(tempfile.mkdtemp(prefix="gocdbackup-stream-"))
    _reachable_by_others(base / "repo")
    gb = GocdBackup.init(f"file://{base}/repo", password=REPO_PASSWORD, scrypt_n=2**12)
    stop = threading.Event()
    result: list[object] = []
    worker = threading.Thread(
        target=lambda: result.append(stream_wal(gb, server.dsn(), slot="lib_slot", stop=stop))
    )
    worker.start()
    try:
        _streaming(server, "lib_slot")
        backup = physical_backup(gb, server.dsn())
        _wait_for(gb, _switch(server, 10))
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("INSERT INTO batches SELECT 11, g FROM generate_series(1, 5) g")
        _wait_for(gb, _switch(server, 12))
    finally:
        stop.set()
        worker.join(60)
    assert result, "the stream did not return"
    # the recovering server's user cannot read the repository yet: 'wal fetch' fails with
    # 126, so PostgreSQL aborts the recovery instead of promoting at the archive's "end"
    with pytest.raises(PreconditionFailed, match=r"recovery failed|before the end of the WAL"):
        restore_physical(gb, backup.id, confirm=backup.id, db=server.dsn("unreadable"))
    _give_to_server_user(base)  # the recovering server reads the repository
    report = restore_physical(gb, backup.id, confirm=backup.id, db=server.dsn("streamed_restore"))
    assert report.logical_backup is not None
    with psycopg.connect(server.dsn("streamed_restore")) as conn:
        batches = {b for (b,) in conn.execute("SELECT DISTINCT batch FROM batches")}
    assert {10, 11, 12} <= batches
    shutil.rmtree(base, ignore_errors=True)


def _give_to_server_user(base: Path) -> None:
    user = _system_user()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in [base, *base.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)


def test_the_stream_survives_a_server_restart(tmp_path: Path) -> None:
    """pg_receivewal reconnects after the server comes back; segments switched before and
    after the restart are all archived, with no gap."""
    with LocalPostgres.start(password=PASSWORD, settings={"wal_level": "replica"}) as pg:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE batches (batch int, n int)")
        gb = GocdBackup.init(f"file://{tmp_path}/repo", password=REPO_PASSWORD, scrypt_n=2**12)
        stop = threading.Event()
        result: list[object] = []
        worker = threading.Thread(
            target=lambda: result.append(stream_wal(gb, pg.dsn(), slot="restart_slot", stop=stop))
        )
        worker.start()
        try:
            _streaming(pg, "restart_slot")
            _wait_for(gb, _switch(pg, 1))
            pg.restart()
            _streaming(pg, "restart_slot")  # the receiver is back on its slot
            after = [_switch(pg, n) for n in (2, 3)]
            for name in after:
                _wait_for(gb, name)
        finally:
            stop.set()
            worker.join(60)
        assert result, "the stream did not return"
        report = wal_verify(gb)
        assert report.ok, report
