"""Issue #10 (D): ``gocdbackup verify`` on the command line: the --read-data forms, usage errors,
one line per backup and per damaged blob, and the damaged blobs in --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gocdbackup.cli import main
from gocdbackup.context import OpContext
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.model.backup import BackupSet
from gocdbackup.ops import take_backup
from gocdbackup.repository import Repository
from gocdbackup.repository.repo import blob_key
from gocdbackup.testing import FakeClock, FakePostgres

from .conftest import PASS, SMALL_CHUNKS


@pytest.fixture
def env() -> dict[str, str]:
    return {"GOCDBACKUP_PASSWORD": PASS.decode(), "GOCDBACKUP_REPO": ""}


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def backup(repo_dir: Path, db: FakePostgres, ctx: OpContext, clock: FakeClock) -> BackupSet:
    store = FsspecStore(f"file://{repo_dir}")
    repo = Repository.init(store, PASS, now=clock.now(), chunker=SMALL_CHUNKS, scrypt_n=2**10)
    return take_backup(repo, db, ctx=ctx)


def invoke(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("value", ["150%", "abc", "100.5", "-1", "nan", "inf%", ""])
def test_a_share_outside_0_to_100_or_not_a_number_is_a_usage_error(
    env: dict[str, str], value: str
) -> None:
    code, out, err = invoke(
        env, "verify", "--repo", "file:///nonexistent/place", "--read-data", value
    )
    assert code == 2, out + err
    assert "--read-data" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("value", "percent"), [("10", 10.0), ("10%", 10.0), ("10.5%", 10.5)])
def test_the_forms_of_a_share(
    env: dict[str, str], repo_dir: Path, backup: BackupSet, value: str, percent: float
) -> None:
    code, out, _ = invoke(
        env, "--json", "verify", "--repo", f"file://{repo_dir}", "--read-data", value
    )
    assert code == 0
    report = json.loads(out)
    assert report["read_data_percent"] == percent
    assert report["backups"][0]["chunks_read"] >= 1
    assert report["damaged_blobs"] == []


def test_damaged_blobs_are_named_with_what_they_break(
    env: dict[str, str], repo_dir: Path, backup: BackupSet
) -> None:
    chunks = backup.components[0].chunks
    missing, corrupted = chunks[0].blob_id, chunks[2].blob_id
    (repo_dir / blob_key(missing)).unlink()
    path = repo_dir / blob_key(corrupted)
    data = bytearray(path.read_bytes())
    data[40:56] = bytes(16)
    path.write_bytes(bytes(data))
    url = f"file://{repo_dir}"

    code, out, err = invoke(env, "verify", "--repo", url, "--read-data", "100%")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"DAMAGED backup {backup.id} is damaged: ")
    assert lines[1].strip() == f"blob {missing[:12]}… missing: breaks the database dump"
    assert lines[2].strip() == f"blob {corrupted[:12]}… unreadable: breaks the database dump"
    assert len(lines) == 3
    assert "the repository is damaged" in err

    code, out, _ = invoke(env, "--json", "verify", "--repo", url, "--read-data", "100")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    damaged = {d["blob_id"]: d for d in report["damaged_blobs"]}
    assert set(damaged) == {missing, corrupted}
    assert damaged[missing]["problem"] == "missing"
    assert damaged[corrupted]["problem"] == "unreadable"
    for d in damaged.values():
        assert d["backup_id"] == backup.id
        assert d["breaks"] == ["the database dump"]
    assert len(report["backups"][0]["damaged_blobs"]) == 2
