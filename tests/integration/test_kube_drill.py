"""A restore drill whose scratch is a gocdnext release in a scratch namespace: the backup is
restored through the Kubernetes API (pg_restore in the pod over exec, SQL through a
port-forward), checked, and its database dropped again."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from gocdbackup import GocdBackup
from gocdbackup.testing import FakeKubeAPI, LocalPostgres, fill_store
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


def test_a_drill_in_a_scratch_namespace(
    gocdnext_db: str, pg: LocalPostgres, cluster: FakeKubeAPI, tmp_path: Path
) -> None:
    store = (tmp_path / "store").as_uri()
    fill_store(gocdnext_db, store)
    gb = GocdBackup.init(f"file://{tmp_path}/repo", password=REPO_PASSWORD)
    backup = gb.backup(gocdnext_db, artifacts=store)
    # the scratch release's bundled database (here: the test server, as the chart's superuser)
    cluster.pods.env[(NS, POD)].update(
        POSTGRES_USER=CHART_USER, POSTGRES_DB="postgres", POSTGRES_PASSWORD=CHART_PASSWORD
    )
    drilled = cli(
        "--json",
        "drill",
        "--repo",
        f"file://{tmp_path}/repo",
        "--scratch-k8s-namespace",
        NS,
        "--k8s-release",
        "prod",
        "--kubeconfig",
        str(tmp_path / "kubeconfig"),
    )
    assert drilled.returncode == 0, drilled.stderr + drilled.stdout
    report = json.loads(drilled.stdout)
    assert report["ok"] is True
    assert report["backup_id"] == backup.id
    assert report["scratch"].startswith(f"k8s://{NS}/{POD}/")
    assert any("pg_restore" in c for c in cluster.pods.commands)
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'gocdbackup_drill_%'"
        ).fetchall()
    assert left == []
