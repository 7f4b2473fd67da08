"""The application key on a real gocdnext-shaped database, from the command line: the decrypt
check, rotation by the printed command, the key's fingerprint in backups, restores that refuse
another key, and the canary secret in no output of any command."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from gocdbackup.gocdnext.secrets import fingerprint
from gocdbackup.testing import CANARY_SECRET
from tests.conftest import PG_PASSWORD, REPO_PASSWORD, SECRET_KEY

GOCDBACKUP = str(Path(sys.executable).with_name("gocdbackup"))
OUTPUTS: list[str] = []


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD, "PGPASSWORD": PG_PASSWORD}
    environ.pop("GOCDNEXT_SECRET_KEY", None)
    environ.update(env or {})
    done = subprocess.run(
        [GOCDBACKUP, *args], env=environ, capture_output=True, text=True, check=False
    )
    OUTPUTS.append(done.stdout + done.stderr)
    return done


def doc(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def key_file(tmp_path: Path, key: bytes, name: str) -> str:
    f = tmp_path / name
    f.write_text(key.hex() + "\n")
    return str(f)


def test_check_rotate_backup_restore_and_no_secret_in_any_output(
    gocdnext_db: str, pg: Any, tmp_path: Path
) -> None:
    old = key_file(tmp_path, SECRET_KEY, "old.key")
    new_key = os.urandom(32)
    new = key_file(tmp_path, new_key, "new.key")
    wrong = key_file(tmp_path, os.urandom(32), "wrong.key")

    checked = run("--json", "secrets", "check", "--db", gocdnext_db, "--secret-key-file", old)
    assert checked.returncode == 0, checked.stderr
    report = doc(checked)
    assert report["passed"]
    assert report["failed"] == 0
    assert report["ok"] > 10
    assert set(report["columns"]) >= {"secrets.value_enc", "runner_profiles.secrets"}
    assert all(c["ok"] > 0 for c in report["columns"].values())
    bad = run("secrets", "check", "--json", "--db", gocdnext_db, "--secret-key-file", wrong)
    assert bad.returncode == 1
    assert doc(bad)["wrong_key"] is True
    human = run("secrets", "check", "--db", gocdnext_db, "--secret-key-file", wrong)
    assert "WRONG KEY" in human.stdout
    printed = run("secrets", "fingerprint", "--secret-key-file", old)
    assert printed.stdout.split()[-1] == fingerprint(SECRET_KEY)

    repo = f"file://{tmp_path}/repo"
    assert run("init", "--repo", repo).returncode == 0
    made = run("--json", "backup", "--repo", repo, "--db", gocdnext_db, "--secret-key-file", old)
    assert made.returncode == 0, made.stderr
    backup = doc(made)
    assert backup["key_fingerprint"] == fingerprint(SECRET_KEY)
    shown = run("show", backup["id"], "--repo", repo)
    assert f"key {fingerprint(SECRET_KEY)}" in shown.stdout

    target = pg.dsn("restored_" + backup["id"][-6:])
    refused = run(
        "restore",
        backup["id"],
        "--repo",
        repo,
        "--db",
        target,
        "--confirm",
        backup["id"],
        "--secret-key-file",
        wrong,
    )
    assert refused.returncode == 1
    assert f"taken with key {fingerprint(SECRET_KEY)}" in refused.stderr
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        (exists,) = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (target.rsplit("/", 1)[-1],)
        ).fetchone() or (0,)
    assert exists == 0  # nothing was touched
    restored = run(
        "--json",
        "restore",
        backup["id"],
        "--repo",
        repo,
        "--db",
        target,
        "--confirm",
        backup["id"],
        "--secret-key-file",
        old,
    )
    assert restored.returncode == 0, restored.stderr
    assert doc(restored)["secrets"]["passed"] is True

    dry = run(
        "secrets",
        "rotate",
        "--db",
        gocdnext_db,
        "--secret-key-file",
        old,
        "--new-secret-key-file",
        new,
    )
    assert dry.returncode == 0, dry.stderr
    (apply,) = [line.strip() for line in dry.stderr.splitlines() if "--confirm" in line]
    rotated = run(*shlex.split(apply, comments=True)[1:])
    assert rotated.returncode == 0, rotated.stderr
    after = run("--json", "secrets", "check", "--db", gocdnext_db, "--secret-key-file", new)
    assert doc(after)["passed"]
    assert doc(run("--json", "secrets", "check", "--db", gocdnext_db, "--secret-key-file", old))[
        "wrong_key"
    ]
    again = run(
        "--json",
        "secrets",
        "rotate",
        "--db",
        gocdnext_db,
        "--secret-key-file",
        old,
        "--new-secret-key-file",
        new,
        "--confirm",
        fingerprint(new_key),
    )
    assert doc(again)["to_reseal"] == 0  # finished: running it again changes nothing

    everything = "\n".join(OUTPUTS)
    assert CANARY_SECRET not in everything
    for secret in (SECRET_KEY.hex(), new_key.hex(), PG_PASSWORD, REPO_PASSWORD):
        assert secret not in everything


def test_bad_keys_are_refused_with_what_is_wrong(gocdnext_db: str, tmp_path: Path) -> None:
    cases = {
        "a trailing newline": ({"GOCDNEXT_SECRET_KEY": SECRET_KEY.hex() + "\n"}, "newline"),
        "too short": ({"GOCDNEXT_SECRET_KEY": SECRET_KEY.hex()[:-1]}, "it has 63"),
        "not hex": ({"GOCDNEXT_SECRET_KEY": "g" * 64}, "other characters"),
    }
    for env, why in cases.values():
        done = run("secrets", "check", "--db", gocdnext_db, env=env)
        assert done.returncode == 1
        assert why in done.stderr
        assert env["GOCDNEXT_SECRET_KEY"].strip() not in done.stderr


def test_a_wrong_key_stops_a_restore_before_the_swap(
    gocdnext_db: str, pg: Any, tmp_path: Path
) -> None:
    """A backup taken without the key: the staging copy is checked before it replaces anything."""
    repo = f"file://{tmp_path}/repo"
    assert run("init", "--repo", repo).returncode == 0
    made = doc(run("--json", "backup", "--repo", repo, "--db", gocdnext_db))
    assert "key_fingerprint" not in made
    target = pg.dsn("keyless_" + made["id"][-6:])
    wrong = key_file(tmp_path, os.urandom(32), "wrong.key")
    refused = run(
        "restore",
        made["id"],
        "--repo",
        repo,
        "--db",
        target,
        "--confirm",
        made["id"],
        "--secret-key-file",
        wrong,
    )
    assert refused.returncode == 1
    assert "WRONG KEY" in refused.stderr
    assert "the target was not touched" in refused.stderr
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        (left,) = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE %s", ("keyless_%",)
        ).fetchone() or (0,)
    assert left == 0  # neither the target nor a staging copy
