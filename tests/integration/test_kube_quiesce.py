"""Quiescing a gocdnext Helm release on the fake Kubernetes API: the server and agents go to
zero and their pods away, and always come back to their replica counts: after success, an
error, Ctrl-C, and a crash followed by ``gocdbackup k8s resume``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gocdbackup import quiesce, quiesced, resume
from gocdbackup.errors import KubernetesError, KubernetesForbidden
from gocdbackup.model.kube import QUIESCE_ANNOTATION
from gocdbackup.testing import FakeKubeAPI

pytestmark = pytest.mark.integration

NS, REL = "gocdnext", "prod"
SERVER, AGENT = "prod-gocdnext-server", "prod-gocdnext-agent"


def labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "gocdnext",
        "app.kubernetes.io/instance": REL,
        "app.kubernetes.io/component": component,
    }


@pytest.fixture
def release(tmp_path: Path) -> Iterator[tuple[FakeKubeAPI, str]]:
    with FakeKubeAPI() as api:
        kubeconfig = str(api.kubeconfig(tmp_path / "kubeconfig", namespace=NS))
        api.add_workload("Deployment", NS, SERVER, replicas=2, labels=labels("server"))
        api.add_workload("StatefulSet", NS, AGENT, replicas=3, labels=labels("agent"))
        yield api, kubeconfig


def replicas(api: FakeKubeAPI) -> dict[str, int]:
    out = {}
    for resource, name in (("deployments", SERVER), ("statefulsets", AGENT)):
        obj = api.get(resource, NS, name)
        assert obj is not None
        out[name] = obj["spec"]["replicas"]
        assert QUIESCE_ANNOTATION not in (obj["metadata"].get("annotations") or {})
    return out


def running(api: FakeKubeAPI) -> int:
    return len(api.names("pods", NS))


@pytest.mark.parametrize("leave", [None, RuntimeError, KeyboardInterrupt])
def test_quiesced_always_resumes(
    release: tuple[FakeKubeAPI, str], leave: type[BaseException] | None
) -> None:
    api, kubeconfig = release
    before = replicas(api)
    expected = pytest.raises(leave) if leave else _nothing()
    with expected, quiesced(NS, REL, kubeconfig=kubeconfig) as stopped:  # type: ignore[attr-defined]
        assert {w.name: w.noted for w in stopped} == before
        assert running(api) == 0
        for resource, name in (("deployments", SERVER), ("statefulsets", AGENT)):
            obj = api.get(resource, NS, name)
            assert obj is not None
            assert obj["spec"]["replicas"] == 0
            assert obj["metadata"]["annotations"][QUIESCE_ANNOTATION] == str(before[name])
        if leave:
            raise leave()
    assert replicas(api) == before


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_crash_is_repaired_by_k8s_resume(release: tuple[FakeKubeAPI, str]) -> None:
    api, kubeconfig = release
    before = replicas(api)
    quiesce(NS, kubeconfig=kubeconfig)  # the release found by its labels; then "a crash"
    quiesce(NS, REL, kubeconfig=kubeconfig)  # a second quiesce keeps the first counts
    resumed = cli("--json", "k8s", "resume", "--k8s-namespace", NS, "--kubeconfig", kubeconfig)
    assert resumed.returncode == 0, resumed.stderr
    assert {w["name"]: w["replicas"] for w in json.loads(resumed.stdout)["resumed"]} == before
    assert replicas(api) == before
    again = cli("k8s", "resume", "--k8s-namespace", NS, "--kubeconfig", kubeconfig)
    assert "nothing was quiesced" in again.stdout
    assert resume(NS, REL, kubeconfig=kubeconfig) == []


def test_pods_that_do_not_go_away_time_out_with_the_way_back(
    release: tuple[FakeKubeAPI, str],
) -> None:
    api, kubeconfig = release
    before = replicas(api)
    api.stuck.add((NS, AGENT))
    stuck = cli(
        "k8s", "quiesce", "--k8s-namespace", NS, "--kubeconfig", kubeconfig, "--timeout", "1"
    )
    assert stuck.returncode == 1
    assert "still has 3 pod(s)" in stuck.stderr
    api.stuck.clear()
    assert cli("k8s", "resume", "--k8s-namespace", NS, "--kubeconfig", kubeconfig).returncode == 0
    assert replicas(api) == before
    api.stuck.add((NS, AGENT))
    with pytest.raises(KubernetesError, match="still has"):
        _quiesce_for_a_second(kubeconfig)
    api.stuck.clear()
    assert replicas(api) == before  # resumed although the quiesce itself failed


def _quiesce_for_a_second(kubeconfig: str) -> None:
    with quiesced(NS, REL, kubeconfig=kubeconfig, timeout=1):
        pytest.fail("not reached")


def test_rbac_refusal_is_clear(release: tuple[FakeKubeAPI, str]) -> None:
    api, kubeconfig = release
    before = replicas(api)
    api.deny("patch", "deployments/scale")
    with pytest.raises(KubernetesForbidden, match="RBAC"):
        quiesce(NS, REL, kubeconfig=kubeconfig)
    assert {n: r for n, r in before.items()} == {
        SERVER: api.get("deployments", NS, SERVER)["spec"]["replicas"],  # type: ignore[index]
        AGENT: api.get("statefulsets", NS, AGENT)["spec"]["replicas"],  # type: ignore[index]
    }


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.run(
        [str(Path(sys.executable).with_name("gocdbackup")), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_workloads_can_be_named_instead_of_the_release(release: tuple[FakeKubeAPI, str]) -> None:
    api, kubeconfig = release
    api.add_workload("Deployment", NS, "custom-worker", replicas=4, labels={"app": "custom"})
    args = [
        "--k8s-namespace",
        NS,
        "--kubeconfig",
        kubeconfig,
        "--workload",
        "deployment/custom-worker",
    ]
    stopped = cli("--json", "k8s", "quiesce", *args)
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["quiesced"] == [
        {"kind": "Deployment", "name": "custom-worker", "replicas": 4}
    ]
    assert replicas(api) == {SERVER: 2, AGENT: 3}  # the release itself untouched
    assert cli("k8s", "resume", *args).returncode == 0
    worker = api.get("deployments", NS, "custom-worker")
    assert worker is not None
    assert worker["spec"]["replicas"] == 4
    bad = cli("k8s", "quiesce", "--k8s-namespace", NS, "--workload", "pod/x")
    assert bad.returncode == 2
    assert "deployment/NAME or statefulset/NAME" in bad.stderr
