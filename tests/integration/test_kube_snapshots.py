"""CSI VolumeSnapshots of gocdnext's artefact claim on the fake Kubernetes API: taken with a
quiesced backup through exec (the combined-disaster capture), recorded in the manifest, listed
with the backup that keeps them, pruned once their backup is forgotten, restored as a new
claim; a snapshot the controller fails is a typed error, and a failed backup leaves no
snapshot behind."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from gocdbackup import GocdBackup
from gocdbackup.testing import FakeKubeAPI, LocalPostgres
from gocdbackup.testing.kube_snapshots import claim
from tests.conftest import REPO_PASSWORD
from tests.integration.test_kube_exec_postgres import (
    CHART_PASSWORD,
    CHART_USER,
    NS,
    POD,
    cli,
)
from tests.integration.test_kube_exec_postgres import chart_role as chart_role  # noqa: PLC0414
from tests.integration.test_kube_exec_postgres import cluster as cluster  # noqa: PLC0414

pytestmark = pytest.mark.integration
PVC = "prod-gocdnext-server-artifacts"


@pytest.fixture
def release(
    gocdnext_db: str, cluster: FakeKubeAPI, tmp_path: Path
) -> tuple[FakeKubeAPI, list[str], str]:
    name = str(conninfo_to_dict(gocdnext_db)["dbname"])
    cluster.pods.env[(NS, POD)].update(
        POSTGRES_USER=CHART_USER, POSTGRES_DB=name, POSTGRES_PASSWORD=CHART_PASSWORD
    )
    cluster.put(claim(NS, PVC, "50Gi"))
    kube = ["--k8s-namespace", NS, "--k8s-release", "prod"]
    kube += ["--kubeconfig", str(tmp_path / "kubeconfig")]
    repo = f"file://{tmp_path}/repo"
    assert cli("init", "--repo", repo).returncode == 0
    return cluster, kube, repo


def test_snapshot_with_the_backup_listed_pruned_and_restored(
    release: tuple[FakeKubeAPI, list[str], str], pg: LocalPostgres
) -> None:
    api, kube, repo = release
    made = cli("--json", "backup", "--repo", repo, *kube, "--quiesce", "--snapshot-pvc")
    assert made.returncode == 0, made.stderr
    backup_id = json.loads(made.stdout)["id"]
    gb = GocdBackup(repo, password=REPO_PASSWORD)
    snapshot = gb.get_backup(backup_id).volume_snapshot
    assert snapshot is not None
    assert (snapshot.claim, snapshot.restore_size) == (PVC, "50Gi")
    assert snapshot.content.startswith("snapcontent-")
    assert snapshot.name in api.names("volumesnapshots", NS)
    shown = cli("show", backup_id, "--repo", repo)
    assert f"VolumeSnapshot {NS}/{snapshot.name} of claim {PVC}, 50Gi" in shown.stdout
    listed = cli("--json", "k8s", "snapshots", "--repo", repo, *kube[:2], *kube[4:])
    assert listed.returncode == 0, listed.stderr
    assert [s["backup"] for s in json.loads(listed.stdout)["snapshots"]] == [backup_id]

    # a new claim from the snapshot
    restored = cli(
        "k8s",
        "restore-pvc",
        backup_id,
        "--repo",
        repo,
        *kube[:2],
        *kube[4:],
        "--claim",
        "artifacts-restored",
        "--confirm",
        backup_id,
    )
    assert restored.returncode == 0, restored.stderr
    new = api.get("persistentvolumeclaims", NS, "artifacts-restored")
    assert new is not None
    assert new["spec"]["dataSource"] == {
        "name": snapshot.name,
        "kind": "VolumeSnapshot",
        "apiGroup": "snapshot.storage.k8s.io",
    }
    assert new["spec"]["resources"]["requests"]["storage"] == "50Gi"

    # a newer backup with its own snapshot; the first is forgotten without access to the
    # cluster: its snapshot is kept by nothing, and the command that prunes it is printed
    second = cli("--json", "backup", "--repo", repo, *kube, "--snapshot-pvc")
    assert second.returncode == 0, second.stderr
    applied = _forget(repo, keep=1)
    assert applied.returncode == 3, applied.stderr  # incomplete: the snapshot is left
    assert [b.id for b in gb.list_backups()] == [json.loads(second.stdout)["id"]]
    listed = cli("k8s", "snapshots", "--repo", repo, *kube[:2], *kube[4:])
    assert "no backup keeps it" in listed.stdout
    assert "--prune" in listed.stderr  # and says how to prune
    prune = next(line.strip() for line in applied.stderr.splitlines() if "--prune" in line)
    # run as printed, in a shell whose kubectl configuration is the default one
    words = shlex.split(prune, comments=True)
    assert words[0] == "gocdbackup"
    pruned = subprocess.run(
        [str(Path(sys.executable).with_name("gocdbackup")), *words[1:]],
        env={**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD, "KUBECONFIG": kube[-1]},
        capture_output=True,
        text=True,
        check=False,
    )
    assert pruned.returncode == 0, pruned.stderr
    assert snapshot.name not in api.names("volumesnapshots", NS)
    # with access to the cluster, retention deletes a forgotten backup's snapshot itself
    later = gb.get_backup(json.loads(second.stdout)["id"]).volume_snapshot
    assert later is not None
    assert cli("backup", "--repo", repo, *kube).returncode == 0
    applied = _forget(repo, keep=1, kubeconfig=kube[-1])
    assert applied.returncode == 0, applied.stderr
    assert f"deleted their VolumeSnapshots: {NS}/{later.name}" in applied.stdout
    assert later.name not in api.names("volumesnapshots", NS)


def _forget(repo: str, *, keep: int, kubeconfig: str | None = None) -> Any:
    keep_last = ["--keep-last", str(keep)]
    plan = json.loads(cli("--json", "retention", "plan", "--repo", repo, *keep_last).stdout)
    kube = ["--kubeconfig", kubeconfig] if kubeconfig else []
    return cli("retention", "apply", "--repo", repo, *keep_last, "--confirm", plan["id"], *kube)


def test_a_failed_snapshot_or_backup_leaves_nothing_listed(
    release: tuple[FakeKubeAPI, list[str], str],
) -> None:
    api, kube, repo = release
    api.snapshot_error = "Failed to check and update snapshot content: driver not found"
    failed = cli("backup", "--repo", repo, *kube, "--snapshot-pvc")
    assert failed.returncode == 1
    assert "driver not found" in failed.stderr
    api.snapshot_error = None
    api.pods.cut_after = 20_000  # the snapshot is taken, then the dump is cut
    before = set(api.names("volumesnapshots", NS))
    cut = cli("backup", "--repo", repo, *kube, "--snapshot-pvc")
    assert cut.returncode == 1
    assert set(api.names("volumesnapshots", NS)) == before  # the new one was deleted
    listed = cli("--json", "list", "--repo", repo)
    assert json.loads(listed.stdout) == []
    needs = cli("backup", "--repo", repo, "--db", "dbname=x", "--snapshot-pvc")
    assert needs.returncode == 2
    assert "need --k8s-namespace" in needs.stderr
