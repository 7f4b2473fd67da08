"""A logical backup's artefacts put back from the bucket's own versions (moto in server
mode): a backup of a versioned bucket records version ids without being told to; objects
overwritten or deleted since come back as they were by server-side copies, unchanged ones are
left alone, and an object whose recorded version is gone comes from the repository."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from gocdbackup import GocdBackup
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.testing import (
    FakeDatabaseContents,
    FakeGocdnext,
    FakePostgres,
    LocalPostgres,
    artifact_objects,
    fill_store,
)

from .conftest import S3_KEY, S3_SECRET, Server, s3_bucket, unique_bucket
from .test_orphans_s3 import cli


def test_artefacts_come_back_from_the_buckets_versions(moto_server: Server, tmp_path: Path) -> None:
    store, _ = s3_bucket(moto_server)
    bucket = store.root
    options = {"endpoint_url": moto_server.endpoint, "key": S3_KEY, "secret": S3_SECRET}
    refs = artifact_objects(store, 4, size=2000)
    db = FakePostgres(
        "gocdnext", {"gocdnext": FakeDatabaseContents(tables={"public.runs": 1}, objects=refs)}
    )
    gb = GocdBackup.init(
        f"file://{tmp_path / 'repo'}", password="pw", scrypt_n=2**10, artifact_options=options
    )
    backup = gb.backup(db, artifacts=f"s3://{bucket}", gocdnext=FakeGocdnext(db))
    index = gb.artifact_index(backup.id)
    assert index is not None
    assert all(e.version for e in index.entries)  # versioning found without being told

    store.write(refs[0].key, b"overwritten after the backup")
    store.delete(refs[1].key)
    gone = index.entries[2]  # its recorded version removed for good
    versioned = FsspecStore(f"s3://{bucket}", {**options, "version_aware": True})
    store.write(refs[2].key, b"newer")
    versioned.fs.call_s3("delete_object", Bucket=bucket, Key=gone.ref.key, VersionId=gone.version)

    result = gb.restore_artifacts(backup.id, f"s3://{bucket}", from_versions=True)
    assert result.from_versions == 2  # overwritten and deleted: server-side copies
    assert result.written == 3  # plus the one whose version is gone, from the repository
    assert result.skipped == 1
    for ref in refs:
        assert hashlib.sha256(store.read(ref.key)).hexdigest() == ref.sha256
    again = gb.restore_artifacts(backup.id, f"s3://{bucket}", from_versions=True)
    assert (again.written, again.skipped) == (0, 4)  # copies of the versions count as them


def test_the_cli_restores_a_database_with_its_artefacts_from_versions(
    moto_server: Server, gocdnext_db: str, pg: LocalPostgres, repo_url: str, repo_env: str
) -> None:
    store, where = s3_bucket(moto_server)
    fill_store(gocdnext_db, store)
    assert cli("init", "--repo", repo_url).returncode == 0
    made = cli("--json", "backup", "--repo", repo_url, "--db", gocdnext_db, *where)
    assert made.returncode == 0, made.stderr
    backup_id = json.loads(made.stdout)["id"]
    keys = sorted(i.key for i in store.list(""))
    before = {k: store.read(k) for k in keys[:3]}
    store.delete(keys[0])
    store.write(keys[1], b"overwritten")

    target = pg.dsn(f"from_versions_{unique_bucket()[3:]}")
    args = ["restore", backup_id, "--repo", repo_url, "--db", target, "--confirm", backup_id]
    bad = cli(*args, "--store-from-versions")
    assert bad.returncode == 2
    assert "needs --artifacts" in bad.stderr
    done = cli("--json", *args, *where, "--store-from-versions")
    assert done.returncode == 0, done.stderr
    restored = dict(json.loads(done.stdout)["artifacts"])
    assert restored["from_versions"] == 2
    assert restored["bytes_written"] == 0  # nothing through us
    assert {k: store.read(k) for k in keys[:3]} == before
