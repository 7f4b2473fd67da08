"""The artefact store and the database together, on a real PostgreSQL and a file store laid out
as gocdnext lays it out (``<root>/<key>``)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gocdbackup import GocdBackup
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.gocdnext_fixture import check_objects, drop_database, write_objects
from gocdbackup.errors import StorageError
from gocdbackup.testing import LocalPostgres
from tests.conftest import REPO_PASSWORD

pytestmark = pytest.mark.integration


def referenced(dsn: str) -> dict[str, str]:
    """key -> recorded SHA-256 ('' for log archives) of every object a ready row references."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT storage_key, content_sha256 FROM artifacts WHERE status = 'ready'"
            " UNION ALL SELECT storage_key, content_sha256 FROM caches WHERE status = 'ready'"
            " UNION ALL SELECT logs_archive_uri, '' FROM job_runs WHERE logs_archive_uri IS NOT NULL"
        ).fetchall()
    return {k: s for k, s in rows}


def test_lose_database_and_store_then_restore_both(
    pg: LocalPostgres, gocdnext_db: str, tmp_path: Path
) -> None:
    root = tmp_path / "var-lib-gocdnext-artifacts"
    store_url = f"file://{root}"
    written = write_objects(gocdnext_db, FsspecStore(store_url))
    (root / "run" / "leftover.part").write_bytes(b"an interrupted upload")  # never copied
    gb = GocdBackup.init(f"file://{tmp_path}/repo", password=REPO_PASSWORD, scrypt_n=2**12)
    backup = gb.backup(gocdnext_db, artifacts=store_url)
    counts = backup.summary()["artifacts"]
    assert counts["copied"] == written
    assert counts["missing"] == 0
    expected = referenced(gocdnext_db)

    shutil.rmtree(root)  # lose both
    name = psycopg.conninfo.conninfo_to_dict(gocdnext_db)["dbname"]
    drop_database(pg.dsn(), str(name))

    report = gb.restore(backup.id, gocdnext_db, confirm=backup.id, artifacts=store_url)
    assert report.summary()["artifacts"]["written"] == written
    restored = referenced(gocdnext_db)
    assert restored == expected
    for key, sha in restored.items():  # zero rows without objects, and the right bytes
        data = (root / key).read_bytes()
        assert not sha or hashlib.sha256(data).hexdigest() == sha
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert on_disk == set(restored)  # zero objects without rows

    # next night: artefacts (never rewritten) are reused from the index as they are; caches and
    # log archives (rewritten in place by gocdnext) got a new write time from the restore and
    # are read once more (their chunks dedup); the night after, nothing is read
    rewritable = sum(1 for key in restored if not key.startswith("run/"))
    again = gb.backup(gocdnext_db, artifacts=store_url)
    assert again.summary()["artifacts"]["copied"] == rewritable
    third = gb.backup(gocdnext_db, artifacts=store_url)
    assert third.summary()["artifacts"]["reused"] == written
    assert third.summary()["artifacts"]["copied"] == 0


def test_kill_9_mid_copy_then_resume(gocdnext_db: str, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    store_url = f"file://{root}"
    written = write_objects(gocdnext_db, FsspecStore(store_url))
    repo = f"file://{tmp_path}/repo"
    env = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD}
    cli = [sys.executable, "-m", "gocdbackup.cli"]
    subprocess.run([*cli, "init", "--repo", repo], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [*cli, "backup", "--repo", repo, "--db", gocdnext_db, "--artifacts", store_url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    journal = tmp_path / "repo" / "journal"
    deadline = time.monotonic() + 120
    while not (journal.exists() and any(journal.rglob("*.bin"))):
        assert proc.poll() is None, "the backup finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.kill()
    proc.wait()
    listed = subprocess.run(
        [*cli, "--json", "list", "--repo", repo],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(listed.stdout) == []  # nothing committed

    resumed = subprocess.run(
        [*cli, "--json", "backup", "--repo", repo, "--db", gocdnext_db, "--artifacts", store_url],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    counts = json.loads(resumed.stdout)["artifacts"]
    assert counts["reused"] >= 100  # at least the first journal batch
    assert counts["reused"] + counts["copied"] == written
    assert not any(journal.rglob("*.bin"))
    backup_id = json.loads(resumed.stdout)["id"]
    elsewhere = f"file://{tmp_path}/restored-store"
    target = gocdnext_db.replace(
        str(psycopg.conninfo.conninfo_to_dict(gocdnext_db)["dbname"]), "cli_resumed"
    )
    done = subprocess.run(
        [
            *cli,
            "--json",
            "restore",
            backup_id,
            "--repo",
            repo,
            "--db",
            target,
            "--confirm",
            backup_id,
            "--artifacts",
            elsewhere,
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(done.stdout)["artifacts"]["written"] == written
    checked, problems = check_objects(target, FsspecStore(elsewhere))
    assert (checked, problems) == (written, [])


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs: a store that runs out of space (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True
    ).returncode:
        pytest.skip("this machine cannot mount a tmpfs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_disk_full_on_the_store_is_a_clear_error(
    gocdnext_db: str, tmp_path: Path, tiny_filesystem: Path
) -> None:
    store_url = f"file://{tmp_path}/artifacts"
    write_objects(gocdnext_db, FsspecStore(store_url))
    gb = GocdBackup.init(f"file://{tmp_path}/repo", password=REPO_PASSWORD, scrypt_n=2**12)
    backup = gb.backup(gocdnext_db, artifacts=store_url)
    with pytest.raises(StorageError, match="no space left"):
        gb.restore_artifacts(backup.id, f"file://{tiny_filesystem}")
    leftovers = [p.name for p in tiny_filesystem.rglob(".gocdbackup-tmp-*")]
    assert leftovers == []  # no partial object, no temporary file left behind


def test_read_only_store_is_access_denied(gocdnext_db: str, tmp_path: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("chattr"):
        pytest.skip("needs root and chattr")
    store_url = f"file://{tmp_path}/artifacts"
    write_objects(gocdnext_db, FsspecStore(store_url))
    gb = GocdBackup.init(f"file://{tmp_path}/repo", password=REPO_PASSWORD, scrypt_n=2**12)
    backup = gb.backup(gocdnext_db, artifacts=store_url)
    target = tmp_path / "frozen"
    target.mkdir()
    if subprocess.run(["chattr", "+i", str(target)], capture_output=True).returncode:
        pytest.skip("this filesystem does not support the immutable attribute")
    try:
        with pytest.raises(StorageError):
            gb.restore_artifacts(backup.id, f"file://{target}")
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=False)
    assert list(target.iterdir()) == []
