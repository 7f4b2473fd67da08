"""The artefact store on S3 (moto) and GCS (emulator) with a real gocdnext database: backup
found through gocdnext's own platform settings, restore into another backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg

from gocdbackup import GocdBackup
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.gocdnext_fixture import check_objects, write_objects
from gocdbackup.gocdnext import cipher as gocdnext_cipher
from gocdbackup.testing import LocalPostgres
from tests.conftest import REPO_PASSWORD, SECRET_KEY

from .conftest import GCS_OPTIONS, S3_KEY, S3_SECRET, EmulatorGcsStore, Server, unique_bucket

CLI = [sys.executable, "-m", "gocdbackup.cli"]


def test_backup_found_through_platform_settings_then_restored_to_gcs(
    pg: LocalPostgres, gocdnext_db: str, moto_server: Server, gcs_server: Server, tmp_path: object
) -> None:
    bucket = unique_bucket()
    s3 = FsspecStore(
        f"s3://{bucket}", {"endpoint_url": moto_server.endpoint, "key": S3_KEY, "secret": S3_SECRET}
    )
    s3.fs.mkdir(bucket)
    written = write_objects(gocdnext_db, s3)
    creds = gocdnext_cipher.encrypt(
        SECRET_KEY, json.dumps({"access_key": S3_KEY, "secret_key": S3_SECRET}).encode()
    )
    with psycopg.connect(gocdnext_db) as conn:  # as gocdnext's admin API stores it
        conn.execute(
            "UPDATE platform_settings SET value = %s, credentials_enc = %s WHERE key = 'artifacts.storage'",
            (
                json.dumps(
                    {
                        "backend": "s3",
                        "bucket": bucket,
                        "endpoint": moto_server.endpoint,
                        "use_path_style": True,
                    }
                ),
                creds,
            ),
        )
    repo = f"file://{tmp_path}/repo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(GOCDBACKUP_PASSWORD=REPO_PASSWORD, GOCDNEXT_SECRET_KEY=SECRET_KEY.hex())
    subprocess.run([*CLI, "init", "--repo", repo], env=env, check=True, capture_output=True)
    done = subprocess.run(
        [*CLI, "--json", "backup", "--repo", repo, "--db", gocdnext_db, "--artifacts", "auto"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert S3_SECRET not in done.stdout + done.stderr
    made = json.loads(done.stdout)
    assert made["artifacts"]["copied"] == written

    wrong = {**env, "GOCDNEXT_SECRET_KEY": os.urandom(32).hex()}
    refused = subprocess.run(
        [*CLI, "backup", "--repo", repo, "--db", gocdnext_db, "--artifacts", "auto"],
        env=wrong,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert "does not decrypt" in refused.stderr

    gcs_bucket = unique_bucket()
    gcs = EmulatorGcsStore(f"gs://{gcs_bucket}", GCS_OPTIONS)
    gcs.fs.mkdir(gcs_bucket)
    gb = GocdBackup(repo, password=REPO_PASSWORD)
    restored = gb.restore_artifacts(made["id"], gcs)
    assert restored.written == written
    assert check_objects(gocdnext_db, gcs) == (written, [])
    again = gb.restore_artifacts(made["id"], gcs)  # a delta restore finds everything in place
    assert (again.written, again.skipped) == (0, written)
