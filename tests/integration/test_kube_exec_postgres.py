"""The Helm chart's bundled PostgreSQL reached through the fake Kubernetes API: SQL through a
port-forward, pg_dump and pg_restore in the pod over exec (here: local processes in the pod's
environment), one snapshot shared by the dump and gocdnext's rows, restores checked and
swapped as locally; a cut stream or a failing pg_dump lists nothing and says why."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from gocdbackup import GocdBackup
from gocdbackup.drivers.kube import kube_client
from gocdbackup.drivers.kube.postgres import KubeExecPostgres
from gocdbackup.errors import KubernetesForbidden, KubernetesNotFound, ToolFailed
from gocdbackup.gocdnext.secrets import fingerprint
from gocdbackup.testing import FakeKubeAPI, LocalPostgres
from tests.conftest import REPO_PASSWORD, SECRET_KEY

pytestmark = pytest.mark.integration

NS, POD = "gocdnext", "prod-gocdnext-postgres-0"
#: the chart's development database runs as its POSTGRES_USER, a superuser
CHART_USER, CHART_PASSWORD = "chart_pg", "gocdnext"


@pytest.fixture(scope="module")
def chart_role(pg: LocalPostgres) -> str:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (CHART_USER,))
        if exists.fetchone() is None:
            conn.execute(f"CREATE ROLE {CHART_USER} SUPERUSER LOGIN PASSWORD '{CHART_PASSWORD}'")
    return CHART_USER


@pytest.fixture
def cluster(pg: LocalPostgres, chart_role: str, tmp_path: Path) -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as api:
        api.kubeconfig(tmp_path / "kubeconfig", namespace=NS)
        api.add_pod(
            NS,
            POD,
            containers=("postgres",),
            labels={"app.kubernetes.io/instance": "prod"},
            env={
                "PATH": f"{pg.bindir}:{os.environ.get('PATH', '')}",
                "PGHOST": "127.0.0.1",
                "PGPORT": str(pg.port),
                "PGPASSWORD": CHART_PASSWORD,
            },
            ports={5432: ("127.0.0.1", pg.port)},
        )
        yield api


def database(api: FakeKubeAPI, tmp_path: Path, dbname: str) -> KubeExecPostgres:
    client = kube_client(kubeconfig=str(tmp_path / "kubeconfig"))
    return KubeExecPostgres(
        client, NS, POD, dbname=dbname, user=CHART_USER, password=CHART_PASSWORD
    )


def counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT schemaname || '.' || relname FROM pg_stat_user_tables ORDER BY 1"
        ).fetchall()
        return {
            t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
            for (t,) in tables
        }


def test_backup_and_restore_through_exec(
    gocdnext_db: str, pg: LocalPostgres, cluster: FakeKubeAPI, tmp_path: Path
) -> None:
    name = conninfo_to_dict(gocdnext_db)["dbname"]
    gb = GocdBackup.init(f"file://{tmp_path}/repo", password=REPO_PASSWORD)
    with database(cluster, tmp_path, str(name)) as db:
        backup = gb.backup(db)
        assert backup.database.name == name
        assert backup.point.goose_version is not None
        dumps = [c for c in cluster.pods.commands if c[:1] == ["pg_dump"]]
        assert any(f"--snapshot={backup.point.snapshot_id}" in c for c in dumps)
        # the archive's table of contents was read back in the pod before the commit
        assert any(c[:2] == ["pg_restore", "--list"] for c in cluster.pods.commands)
        report = gb.restore(
            backup.id, db.database_named("restored_exec"), confirm=backup.id, jobs=2
        )
        assert report.rows_checked == sum(t.rows for t in backup.database.tables)
    assert any("pg_restore" in c and "--no-owner" in c for c in cluster.pods.commands)
    # table by table in the pod too; no file of this machine reaches it, so no pg_restore -j
    assert report.method == "tables"
    restores = [c for c in cluster.pods.commands if "pg_restore" in c]
    assert any("--section=post-data" in c for c in restores)
    assert not any(a.startswith("--jobs") for c in restores for a in c)
    assert sum(c[-1:] == ["--version"] for c in restores) == 1  # the tool is asked once
    assert counts(pg.dsn("restored_exec")) == counts(gocdnext_db)


def test_a_cut_exec_stream_lists_nothing_and_says_why(
    gocdnext_db: str, cluster: FakeKubeAPI, tmp_path: Path
) -> None:
    name = str(conninfo_to_dict(gocdnext_db)["dbname"])
    gb = GocdBackup.init(f"file://{tmp_path}/repo", password=REPO_PASSWORD)
    cluster.pods.cut_after = 20_000
    with database(cluster, tmp_path, name) as db, pytest.raises(ToolFailed) as cut:
        gb.backup(db)
    assert "without an exit status" in str(cut.value)
    assert len(gb.list_backups()) == 0
    cluster.pods.cut_after = None
    cluster.pods.env[(NS, POD)]["PGPASSWORD"] = "wrong"  # pg_dump in the pod fails
    with database(cluster, tmp_path, name) as db, pytest.raises(ToolFailed) as failed:
        gb.backup(db)
    assert "non-zero exit code" in str(failed.value)
    assert "password authentication failed" in str(failed.value)
    assert len(gb.list_backups()) == 0


def test_refusals_are_typed(cluster: FakeKubeAPI, tmp_path: Path) -> None:
    client = kube_client(kubeconfig=str(tmp_path / "kubeconfig"))
    with pytest.raises(KubernetesNotFound, match="not found"):
        KubeExecPostgres(client, NS, "missing-postgres-0")
    cluster.deny("create", "pods/portforward")
    with pytest.raises(KubernetesForbidden, match="RBAC"):
        KubeExecPostgres(client, NS, POD)


def test_the_cli_backs_up_and_restores_a_release(
    gocdnext_db: str, pg: LocalPostgres, cluster: FakeKubeAPI, tmp_path: Path
) -> None:
    name = str(conninfo_to_dict(gocdnext_db)["dbname"])
    pod = cluster.get("pods", NS, POD)
    assert pod is not None
    pod["metadata"]["labels"]["app.kubernetes.io/name"] = "gocdnext"
    cluster.put(pod)
    # the chart's container environment names the database and its credentials
    cluster.pods.env[(NS, POD)].update(
        POSTGRES_USER=CHART_USER, POSTGRES_DB=name, POSTGRES_PASSWORD=CHART_PASSWORD
    )
    # the chart's Secret holds the application key: the backup records its fingerprint
    key = {"secret-key": SECRET_KEY.hex().encode()}
    cluster.put(cluster.secret(NS, "prod-gocdnext-server-tokens", key))
    before = counts(gocdnext_db)
    kube = ["--k8s-namespace", NS, "--kubeconfig", str(tmp_path / "kubeconfig")]
    repo = f"file://{tmp_path}/repo"
    assert cli("init", "--repo", repo).returncode == 0
    made = cli("--json", "backup", "--repo", repo, *kube)  # the release found by its labels
    assert made.returncode == 0, made.stderr
    backup_id = json.loads(made.stdout)["id"]
    assert json.loads(made.stdout)["key_fingerprint"] == fingerprint(SECRET_KEY)
    with psycopg.connect(gocdnext_db, autocommit=True) as conn:
        conn.execute("DELETE FROM log_lines")
    restored = cli(
        "restore",
        backup_id,
        "--repo",
        repo,
        *kube,
        "--k8s-release",
        "prod",
        "--replace",
        "--confirm",
        backup_id,
    )
    assert restored.returncode == 0, restored.stderr
    assert counts(gocdnext_db) == before
    both = cli("backup", "--repo", repo, *kube, "--db", gocdnext_db)
    assert both.returncode == 2
    assert "not both" in both.stderr
    assert CHART_PASSWORD not in made.stdout + made.stderr + restored.stdout + restored.stderr


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD}
    for name in ("GOCDBACKUP_DB", "KUBECONFIG", "PGPASSWORD"):
        env.pop(name, None)
    return subprocess.run(
        [str(Path(sys.executable).with_name("gocdbackup")), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_quiesced_backup_scales_the_release_down_and_back(
    gocdnext_db: str, cluster: FakeKubeAPI, tmp_path: Path
) -> None:
    name = str(conninfo_to_dict(gocdnext_db)["dbname"])
    cluster.pods.env[(NS, POD)].update(
        POSTGRES_USER=CHART_USER, POSTGRES_DB=name, POSTGRES_PASSWORD=CHART_PASSWORD
    )
    common = {"app.kubernetes.io/name": "gocdnext", "app.kubernetes.io/instance": "prod"}
    cluster.add_workload(
        "Deployment",
        NS,
        "prod-gocdnext-server",
        replicas=2,
        labels={**common, "app.kubernetes.io/component": "server"},
    )
    cluster.add_workload(
        "StatefulSet",
        NS,
        "prod-gocdnext-agent",
        replicas=1,
        labels={**common, "app.kubernetes.io/component": "agent"},
    )
    kube = ["--k8s-namespace", NS, "--k8s-release", "prod"]
    kube += ["--kubeconfig", str(tmp_path / "kubeconfig")]
    repo = f"file://{tmp_path}/repo"
    assert cli("init", "--repo", repo).returncode == 0
    made = cli("backup", "--repo", repo, *kube, "--quiesce")
    assert made.returncode == 0, made.stderr
    scaled = [p for m, p in cluster.requests if m == "PATCH" and p.endswith("/scale")]
    assert len(scaled) == 4  # two down, two back
    assert _replicas(cluster) == (2, 1)
    # a backup that fails still brings the release back
    cluster.pods.cut_after = 20_000
    failed = cli("backup", "--repo", repo, *kube, "--quiesce")
    assert failed.returncode == 1
    assert "without an exit status" in failed.stderr
    assert _replicas(cluster) == (2, 1)


def _replicas(api: FakeKubeAPI) -> tuple[int, int]:
    server = api.get("deployments", NS, "prod-gocdnext-server")
    agent = api.get("statefulsets", NS, "prod-gocdnext-agent")
    assert server is not None
    assert agent is not None
    return server["spec"]["replicas"], agent["spec"]["replicas"]


def test_ctrl_c_during_a_quiesced_backup_brings_the_release_back(
    gocdnext_db: str, cluster: FakeKubeAPI, tmp_path: Path
) -> None:
    name = str(conninfo_to_dict(gocdnext_db)["dbname"])
    cluster.pods.env[(NS, POD)].update(
        POSTGRES_USER=CHART_USER, POSTGRES_DB=name, POSTGRES_PASSWORD=CHART_PASSWORD
    )
    labels = {"app.kubernetes.io/name": "gocdnext", "app.kubernetes.io/instance": "prod"}
    cluster.add_workload("Deployment", NS, "prod-gocdnext-server", replicas=2, labels=labels)
    repo = f"file://{tmp_path}/repo"
    assert cli("init", "--repo", repo).returncode == 0
    cluster.pods.delay = 3.0  # every command in the pod is slow to start: time to press Ctrl-C
    env = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD}
    env.pop("KUBECONFIG", None)
    backup = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gocdbackup")),
            "backup",
            "--repo",
            repo,
            "--k8s-namespace",
            NS,
            "--k8s-release",
            "prod",
            "--kubeconfig",
            str(tmp_path / "kubeconfig"),
            "--quiesce",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(200):  # until the release is quiesced
        server = cluster.get("deployments", NS, "prod-gocdnext-server")
        if server is not None and server["spec"]["replicas"] == 0:
            break
        time.sleep(0.05)
    else:
        backup.kill()
        pytest.fail("the backup never quiesced the release")
    backup.send_signal(signal.SIGINT)
    _, err = backup.communicate(timeout=60)
    assert backup.returncode == 130, err
    assert _replicas_of(cluster) == 2
    assert json.loads(cli("--json", "list", "--repo", repo).stdout) == []


def _replicas_of(api: FakeKubeAPI) -> int:
    server = api.get("deployments", NS, "prod-gocdnext-server")
    assert server is not None
    return int(server["spec"]["replicas"])
