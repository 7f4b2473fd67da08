"""gocdnext's Kubernetes secrets backend from the command line, on a real gocdnext-shaped
database and the fake Kubernetes API (the real ``kubernetes`` client over HTTP, through a
kubeconfig): the check of projects against Secrets, the Secrets kept encrypted in a backup and
written back by the printed command, the application key read from the Helm chart's Secret,
and RBAC refusals that change nothing."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gocdbackup.gocdnext.secrets import fingerprint
from gocdbackup.testing import CANARY_SECRET, FakeKubeAPI
from tests.conftest import PG_PASSWORD, REPO_PASSWORD, SECRET_KEY

pytestmark = pytest.mark.integration

GOCDBACKUP = str(Path(sys.executable).with_name("gocdbackup"))
NS = "gocdnext"
TOKENS = "prod-gocdnext-server-tokens"


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[FakeKubeAPI, str]]:
    with FakeKubeAPI() as api:
        yield api, str(api.kubeconfig(tmp_path / "kubeconfig", namespace=NS))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD, "PGPASSWORD": PG_PASSWORD}
    for name in ("GOCDNEXT_SECRET_KEY", "GOCDNEXT_SECRET_K8S_NAMESPACE", "KUBECONFIG"):
        environ.pop(name, None)
    return subprocess.run(
        [GOCDBACKUP, *args], env=environ, capture_output=True, text=True, check=False
    )


def run_printed(line: str) -> subprocess.CompletedProcess[str]:
    words = shlex.split(line, comments=True)
    assert words[0] == "gocdbackup"
    return run(*words[1:])


def slugs(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [str(r[0]) for r in conn.execute("SELECT slug FROM projects ORDER BY slug")]


def seed(api: FakeKubeAPI, dsn: str) -> list[str]:
    names = []
    for n, slug in enumerate(slugs(dsn)):
        data = {"DEPLOY_TOKEN": f"token-{n}".encode()}
        if n == 0:
            data["CANARY"] = CANARY_SECRET.encode()
        names.append(f"gocdnext-secrets-{slug}")
        api.put(api.secret(NS, names[-1], data, labels={"team": slug}))
    api.put(api.secret(NS, "unrelated", {"x": b"keep me"}))
    return names


def test_project_secrets_checked_backed_up_and_written_back(
    gocdnext_db: str, kube: tuple[FakeKubeAPI, str], tmp_path: Path
) -> None:
    api, kubeconfig = kube
    names = seed(api, gocdnext_db)
    k8s = ["--kubeconfig", kubeconfig, "--secrets-namespace", NS]
    checked = run(
        "--json",
        "secrets",
        "check",
        "--db",
        gocdnext_db,
        "--secret-key-file",
        _key_file(tmp_path),
        *k8s,
    )
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["project_secrets"]["passed"] is True

    # a Secret left without a project, and a project without its Secret: exit 1, both named
    api.put(api.secret(NS, "gocdnext-secrets-gone-project", {"A": b"1"}))
    api.delete("secrets", NS, names[-1])
    bad = run(
        "secrets", "check", "--db", gocdnext_db, "--secret-key-file", _key_file(tmp_path), *k8s
    )
    assert bad.returncode == 1
    assert "gocdnext-secrets-gone-project" in bad.stdout
    assert slugs(gocdnext_db)[-1] in bad.stdout
    api.delete("secrets", NS, "gocdnext-secrets-gone-project")
    api.put(api.secret(NS, names[-1], {"DEPLOY_TOKEN": b"again"}))

    repo = f"file://{tmp_path}/repo"
    assert run("init", "--repo", repo).returncode == 0
    made = run("--json", "backup", "--repo", repo, "--db", gocdnext_db, *k8s)
    assert made.returncode == 0, made.stderr
    backup_id = json.loads(made.stdout)["id"]
    shown = run("show", backup_id, "--repo", repo)
    assert f"{len(names)} project Secret(s) of namespace {NS!r}" in shown.stdout
    stored = b"".join(p.read_bytes() for p in (tmp_path / "repo").rglob("*") if p.is_file())
    assert CANARY_SECRET.encode() not in stored
    assert b"DEPLOY_TOKEN" not in stored  # even the item names are encrypted

    # the Secrets are lost; the dry run says so and prints the command that writes them
    before = {n: api.get("secrets", NS, n) for n in names}
    for name in names:
        api.delete("secrets", NS, name)
    api.put(api.secret(NS, names[0], {"DEPLOY_TOKEN": b"changed"}))
    dry = run(
        "secrets",
        "k8s-restore",
        backup_id,
        "--repo",
        repo,
        "--secrets-namespace",
        NS,
        "--kubeconfig",
        kubeconfig,
    )
    assert dry.returncode == 0, dry.stderr
    assert f"would create {len(names) - 1}, would replace 1" in dry.stdout
    assert api.names("secrets", NS) == sorted([names[0], "unrelated"])
    printed = next(line.strip() for line in dry.stderr.splitlines() if "--confirm" in line)
    done = run_printed(printed)
    assert done.returncode == 0, done.stderr
    assert f"created {len(names) - 1}, replaced 1" in done.stdout
    for name in names:
        after = api.get("secrets", NS, name)
        assert after is not None
        assert before[name] is not None
        assert after["data"] == before[name]["data"]
        assert after["metadata"].get("labels") == before[name]["metadata"].get("labels")
    assert api.get("secrets", NS, "unrelated") is not None
    again = run_printed(printed)
    assert f"{len(names)} already as backed up" in again.stdout
    for out in (checked, bad, made, shown, dry, done, again):
        assert CANARY_SECRET not in out.stdout + out.stderr


def _key_file(tmp_path: Path) -> str:
    f = tmp_path / "app.key"
    f.write_text(SECRET_KEY.hex() + "\n")
    return str(f)


def test_the_key_from_the_helm_chart_secret(kube: tuple[FakeKubeAPI, str], tmp_path: Path) -> None:
    api, kubeconfig = kube
    api.put(api.secret(NS, TOKENS, {"secret-key": SECRET_KEY.hex().upper().encode()}))
    got = run(
        "secrets", "fingerprint", "--secret-key-k8s", f"{NS}/{TOKENS}", "--kubeconfig", kubeconfig
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout.split()[-1] == fingerprint(SECRET_KEY)
    assert SECRET_KEY.hex() not in got.stdout.lower() + got.stderr.lower()
    # an existing Secret's item name; the namespace from --secrets-namespace is not needed
    api.put(api.secret(NS, "mine", {"SECRET_KEY": SECRET_KEY.hex().encode()}))
    mine = run(
        "secrets",
        "fingerprint",
        "--secret-key-k8s",
        f"{NS}/mine:SECRET_KEY",
        "--kubeconfig",
        kubeconfig,
    )
    assert mine.stdout.split()[-1] == fingerprint(SECRET_KEY)
    # escrowed on paper straight from the Secret, and recovered from the paper
    paper, out = tmp_path / "key.txt", tmp_path / "recovered.key"
    escrowed = run(
        "secrets",
        "escrow",
        "--secret-key-k8s",
        f"{NS}/{TOKENS}",
        "--kubeconfig",
        kubeconfig,
        "--paper",
        str(paper),
    )
    assert escrowed.returncode == 0, escrowed.stderr
    recovered = run("secrets", "recover", "--paper", str(paper), "--out", str(out))
    assert recovered.returncode == 0, recovered.stderr
    assert out.read_text().strip().lower() == SECRET_KEY.hex()


@pytest.mark.parametrize(
    ("data", "ref", "expected"),
    [
        ({"secret-key": SECRET_KEY.hex().encode() + b"\n"}, f"{NS}/bad", "ends with a newline"),
        ({"secret-key": b"abc"}, f"{NS}/bad", "must be 64 hexadecimal characters"),
        ({"other": b"x"}, f"{NS}/bad", "has no item secret-key or SECRET_KEY"),
        ({"secret-key": b"x"}, f"{NS}/absent", "there is no Secret 'absent'"),
        ({"secret-key": b"x"}, "no-namespace", "does not name a Secret"),
    ],
)
def test_a_bad_key_secret_is_refused_with_what_is_wrong(
    kube: tuple[FakeKubeAPI, str], data: dict[str, bytes], ref: str, expected: str
) -> None:
    api, kubeconfig = kube
    api.put(api.secret(NS, "bad", data))
    got = run("secrets", "fingerprint", "--secret-key-k8s", ref, "--kubeconfig", kubeconfig)
    assert got.returncode != 0
    assert expected in got.stderr
    assert SECRET_KEY.hex() not in got.stderr.lower()


def test_rbac_refusal_is_clear_and_nothing_is_backed_up(
    gocdnext_db: str, kube: tuple[FakeKubeAPI, str], tmp_path: Path
) -> None:
    api, kubeconfig = kube
    seed(api, gocdnext_db)
    api.deny("list", "secrets")
    repo = f"file://{tmp_path}/repo"
    assert run("init", "--repo", repo).returncode == 0
    refused = run(
        "backup",
        "--repo",
        repo,
        "--db",
        gocdnext_db,
        "--kubeconfig",
        kubeconfig,
        "--secrets-namespace",
        NS,
    )
    assert refused.returncode == 1
    assert "refused it (403)" in refused.stderr
    assert "RBAC" in refused.stderr
    listed = run("--json", "list", "--repo", repo)
    assert json.loads(listed.stdout) == []


def test_no_cluster_configuration_is_a_clear_error(tmp_path: Path) -> None:
    got = run(
        "secrets",
        "fingerprint",
        "--secret-key-k8s",
        f"{NS}/x",
        "--kubeconfig",
        str(tmp_path / "missing"),
    )
    assert got.returncode != 0
    assert "no usable Kubernetes configuration" in got.stderr


def test_restore_writes_the_secrets_or_says_how(
    gocdnext_db: str, pg: Any, kube: tuple[FakeKubeAPI, str], tmp_path: Path
) -> None:
    api, kubeconfig = kube
    names = seed(api, gocdnext_db)
    repo = f"file://{tmp_path}/repo"
    assert run("init", "--repo", repo).returncode == 0
    made = run(
        "--json",
        "backup",
        "--repo",
        repo,
        "--db",
        gocdnext_db,
        "--kubeconfig",
        kubeconfig,
        "--secrets-namespace",
        NS,
    )
    backup_id = json.loads(made.stdout)["id"]

    # without --secrets-namespace: the database only, and a note with a command that runs
    plain = run(
        "restore",
        backup_id,
        "--repo",
        repo,
        "--db",
        pg.dsn("restored_plain"),
        "--confirm",
        backup_id,
        "--kubeconfig",
        kubeconfig,
    )
    assert plain.returncode == 0, plain.stderr
    assert f"{len(names)} project Secret(s)" in plain.stderr
    hint = next(line.strip() for line in plain.stderr.splitlines() if "k8s-restore" in line)
    shown = run_printed(hint)
    assert shown.returncode == 0, shown.stderr
    assert f"{len(names)} already as backed up" in shown.stdout

    # into a staging namespace, with the database
    staging = run(
        "--json",
        "restore",
        backup_id,
        "--repo",
        repo,
        "--db",
        pg.dsn("restored_staging"),
        "--confirm",
        backup_id,
        "--kubeconfig",
        kubeconfig,
        "--secrets-namespace",
        "staging",
    )
    assert staging.returncode == 0, staging.stderr
    assert sorted(json.loads(staging.stdout)["kube_secrets"]["created"]) == sorted(names)
    assert api.names("secrets", "staging") == sorted(names)
    for out in (made, plain, shown, staging):
        assert CANARY_SECRET not in out.stdout + out.stderr
