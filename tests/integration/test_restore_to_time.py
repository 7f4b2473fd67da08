"""Database and artefact bucket brought back to one instant through the CLI: a gocdnext-shaped
database on a server archiving WAL with our CLI, its artefacts in a versioned bucket (moto in
server mode), gocdnext's activity before and after T (new artefacts, a cache overwritten, the
sweeper deleting), then ``restore-to-time T`` (dry run, then the printed command): the
recovered database has what was committed before T and not after, the bucket holds what it
held at T, and the orphan scan of the pair is clean."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from gocdbackup import physical_backup
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.ops.wal import WAL_KIND
from gocdbackup.testing import FixtureSpec, build_gocdnext_fixture, fill_store
from tests.conftest import SECRET_KEY
from tests.contract.conftest import S3_KEY, S3_SECRET, Server, moto_server, s3_bucket
from tests.integration.archiving import CLI, Archive, archiving_server

pytestmark = pytest.mark.integration
__all__ = ["moto_server"]  # the fixture, for the tests below


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False)


def next_second() -> None:
    """Past the next whole second: S3 stamps versions to the second."""
    time.sleep(1.05 - (time.time() % 1))


def _new_artifact(dsn: str, store: FsspecStore, name: str) -> str:
    data = os.urandom(3000)
    key = f"run/{name}/job/{name}/{name}"
    store.write(key, data)  # gocdnext uploads the object, then marks the row ready
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO artifacts (run_id, job_run_id, pipeline_id, project_id, path,
                   storage_key, size_bytes, content_sha256, status, expires_at, created_at)
               SELECT run_id, job_run_id, pipeline_id, project_id, %s, %s, %s, %s, 'ready',
                   now() + interval '30 days', now() FROM artifacts LIMIT 1""",
            (f"dist/{name}.bin", key, len(data), hashlib.sha256(data).hexdigest()),
        )
    return key


def _sweep(dsn: str, store: FsspecStore) -> str:
    """The sweeper retires one artefact: its object, then its row."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT storage_key FROM artifacts WHERE status = 'ready' ORDER BY storage_key LIMIT 1"
        ).fetchone()
        assert row is not None
        store.delete(row[0])
        conn.execute("DELETE FROM artifacts WHERE storage_key = %s", (row[0],))
    return str(row[0])


def _overwrite_cache(dsn: str, store: FsspecStore) -> tuple[str, bytes]:
    data = os.urandom(5000)
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT storage_key FROM caches WHERE status = 'ready' ORDER BY storage_key LIMIT 1"
        ).fetchone()
        assert row is not None
        store.write(row[0], data)
        conn.execute(
            "UPDATE caches SET size_bytes = %s, content_sha256 = %s WHERE storage_key = %s",
            (len(data), hashlib.sha256(data).hexdigest(), row[0]),
        )
    return str(row[0]), data


@pytest.fixture
def installation(moto_server: Server) -> Iterator[tuple[Archive, FsspecStore, list[str]]]:
    with archiving_server(password="rtt-server-pw") as archive:
        dsn = archive.pg.dsn("gocdnext")
        with psycopg.connect(archive.pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE gocdnext")
        build_gocdnext_fixture(
            dsn, FixtureSpec(projects=1, runs_per_pipeline=4), secret_key=SECRET_KEY
        )
        store, where = s3_bucket(moto_server)
        fill_store(dsn, store)
        yield archive, store, where


def test_database_and_bucket_to_one_instant(
    installation: tuple[Archive, FsspecStore, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, store, where = installation
    dsn = archive.pg.dsn("gocdnext")
    backup = physical_backup(archive.gb(), dsn)
    before = _new_artifact(dsn, store, "before")
    next_second()
    at = datetime.now(UTC)
    with psycopg.connect(dsn) as conn:
        at_t = dict(conn.execute("SELECT storage_key, content_sha256 FROM caches").fetchall())
    objects_at_t = {i.key: store.read(i.key) for i in store.list("")}
    next_second()
    after = _new_artifact(dsn, store, "after")
    cache_key, _ = _overwrite_cache(dsn, store)
    swept = _sweep(dsn, store)
    archive.switch(rows=1)
    archive.share_repository()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("PGPASSWORD", "rtt-server-pw")  # the printed command leaves it out

    target = archive.pg.dsn("gocdnext_at_t")
    args = ["restore-to-time", at.isoformat(), "--db", target, *where]
    dry = archive.cli("--json", *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["backup_id"] == backup.id
    assert plan["store_plan"]["counts"] == {
        "restore": 2,
        "delete": 1,
        "unchanged": len(objects_at_t) - 2,  # the cache overwritten and the artefact swept
    }
    assert store.exists(after)  # a dry run changes nothing

    shown = archive.cli(*args)  # no --dry-run, no --confirm: the plan and the command
    assert shown.returncode == 3, shown.stderr
    command = shown.stderr.split("left to do:")[1].splitlines()[1].strip()
    assert f"--confirm {plan['id']}" in command
    done = archive.cli(*shlex.split(command, comments=True)[1:])  # as printed, in a shell
    assert done.returncode == 0, done.stderr + done.stdout

    with psycopg.connect(target) as conn:
        keys = {r[0] for r in conn.execute("SELECT storage_key FROM artifacts").fetchall()}
        caches = dict(conn.execute("SELECT storage_key, content_sha256 FROM caches").fetchall())
    assert before in keys
    assert swept in keys
    assert after not in keys
    assert caches == at_t
    assert {i.key: store.read(i.key) for i in store.list("")} == objects_at_t
    assert hashlib.sha256(store.read(cache_key)).hexdigest() == at_t[cache_key]
    assert "orphans of the pair: clean" in done.stdout


def test_restore_to_time_refuses_what_it_cannot_do(
    installation: tuple[Archive, FsspecStore, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, _, where = installation
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    now = datetime.now(UTC).isoformat()
    target = archive.pg.dsn("gocdnext_at_t")
    none = archive.cli("restore-to-time", now, "--db", target, *where, "--dry-run")
    assert none.returncode == 1
    assert "no physical base backup" in none.stderr
    physical_backup(archive.gb(), archive.pg.dsn("gocdnext"))
    archive.share_repository()
    before_it = archive.cli("restore-to-time", now, "--db", target, *where, "--dry-run")
    assert before_it.returncode == 1
    assert "the oldest is from" in before_it.stderr  # T before the oldest base backup
    now = datetime.now(UTC).isoformat()
    wrong = archive.cli("restore-to-time", now, "--db", target, *where, "--confirm", "rtt-0")
    assert wrong.returncode == 1
    assert "nothing was changed" in wrong.stderr
    at = datetime.now(UTC).isoformat()
    live = ["restore-to-time", at, "--db", archive.pg.dsn("gocdnext"), *where]
    plan = json.loads(archive.cli("--json", *live, "--dry-run").stdout)["id"]
    replaced = archive.cli(*live, "--confirm", plan)  # the live database, without --replace
    assert replaced.returncode == 1
    assert "already exists" in replaced.stderr
    assert "nothing was changed" in replaced.stderr


def test_a_database_that_cannot_be_recovered_leaves_the_way_back(
    installation: tuple[Archive, FsspecStore, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What can be checked before the bucket moves is checked first; a recovery that fails
    after the bucket was rolled says so, with the command that rolls the bucket back."""
    archive, store, where = installation
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("PGPASSWORD", "rtt-server-pw")
    dsn = archive.pg.dsn("gocdnext")
    physical_backup(archive.gb(), dsn)
    next_second()
    at = datetime.now(UTC).isoformat()
    next_second()
    _new_artifact(dsn, store, "later")
    archive.switch(rows=1)
    latest = {i.key: store.read(i.key) for i in store.list("")}
    args = ["restore-to-time", at, "--db", archive.pg.dsn("gocdnext_at_t"), *where]
    plan = json.loads(archive.cli("--json", *args, "--dry-run").stdout)["id"]

    early = archive.cli(*args, "--confirm", plan, "--pg-bindir", str(archive.base))
    assert early.returncode == 1  # no server binaries there: refused before anything moved
    assert {i.key: store.read(i.key) for i in store.list("")} == latest

    gb = archive.gb()  # the WAL the recovery needs is lost
    for name in gb.repository.record_ids(WAL_KIND):
        gb.repository.delete_record(WAL_KIND, name)
    archive.share_repository()
    halfway = archive.cli(*args, "--confirm", plan)
    assert halfway.returncode == 1
    assert "was rolled to" in halfway.stderr
    assert "later" not in {i.key.split("/")[1] for i in store.list("run/")}  # rolled to T
    undo = halfway.stderr.split("'gocdbackup ")[-1].split("'")[0]
    undo_args = shlex.split(" ".join(undo.split()))  # as printed, line breaks aside
    shown = run("--json", *undo_args, *where[2:])
    assert shown.returncode == 0, (undo_args, shown.stdout, shown.stderr)
    rollback = json.loads(shown.stdout)
    done = run(*undo_args[:-1], *where[2:], "--confirm", rollback["id"])
    assert done.returncode == 0, done.stderr
    assert {i.key: store.read(i.key) for i in store.list("")} == latest
