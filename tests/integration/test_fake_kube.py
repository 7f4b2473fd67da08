"""The fake Kubernetes API as the real client meets it: objects (pages, selectors, versions,
merge patch, Status errors, RBAC denials) and pod exec over websockets (stdout, stderr, stdin
closed with v5's close frame, the exit status)."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from gocdbackup.drivers.kube import kube_client
from gocdbackup.drivers.kube.exec import PodProcess, pod_output
from gocdbackup.errors import ConfigError, KubernetesError
from gocdbackup.testing import FakeKubeAPI

pytestmark = pytest.mark.integration
NS = "ns"


@pytest.fixture
def core(tmp_path: Path) -> Iterator[tuple[FakeKubeAPI, client.CoreV1Api]]:
    with FakeKubeAPI(page_limit=2) as api:
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", namespace=NS)
        yield api, client.CoreV1Api(kube_client(kubeconfig=str(kubeconfig)))


def test_objects_pages_selectors_versions_and_errors(
    core: tuple[FakeKubeAPI, client.CoreV1Api],
) -> None:
    api, v1 = core
    for n in range(5):
        api.put(api.secret(NS, f"s{n}", {"k": b"v"}, labels={"odd": str(n % 2)}))
    first = v1.list_namespaced_secret(NS, limit=10)
    assert [s.metadata.name for s in first.items] == ["s0", "s1"]
    assert first.metadata._continue == "s1"
    odd = v1.list_namespaced_secret(NS, label_selector="odd=1")
    assert [s.metadata.name for s in odd.items] == ["s1", "s3"]
    with pytest.raises(ApiException) as missing:
        v1.read_namespaced_secret("nope", NS)
    assert missing.value.status == 404
    stale = v1.read_namespaced_secret("s0", NS)
    v1.patch_namespaced_secret("s0", NS, {"metadata": {"labels": {"new": "1"}}})
    assert api.get("secrets", NS, "s0")["metadata"]["labels"] == {"odd": "0", "new": "1"}
    with pytest.raises(ApiException) as conflict:
        v1.replace_namespaced_secret("s0", NS, stale)
    assert conflict.value.status == 409
    api.deny("get", "secrets")
    with pytest.raises(ApiException) as denied:
        v1.read_namespaced_secret("s1", NS)
    assert denied.value.status == 403


def test_exec_streams_the_exit_status_and_stdin(
    core: tuple[FakeKubeAPI, client.CoreV1Api],
) -> None:
    api, v1 = core
    api.add_pod(NS, "p0", containers=("main",), env={"FOO": "bar"})
    run = stream(
        v1.connect_get_namespaced_pod_exec,
        "p0",
        NS,
        command=["sh", "-c", "echo $FOO; echo err >&2; exit 3"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    run.run_forever(timeout=10)
    assert (run.read_stdout(), run.read_stderr(), run.returncode) == ("bar\n", "err\n", 3)
    data = bytes(range(256)) * 8192
    run = stream(
        v1.connect_get_namespaced_pod_exec,
        "p0",
        NS,
        command=["sha256sum"],
        stderr=True,
        stdin=True,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    run.write_stdin(data)
    run.close_channel(0)
    run.run_forever(timeout=20)
    assert run.read_stdout().split()[0] == hashlib.sha256(data).hexdigest()
    assert run.returncode == 0


def test_a_256_mib_exec_stream_reads_in_flat_memory(
    core: tuple[FakeKubeAPI, client.CoreV1Api], tmp_path: Path
) -> None:
    api, _ = core
    api.add_pod(NS, "p0", containers=("postgres",))
    size = 256 * 1024 * 1024
    proc = PodProcess(
        kube_client(kubeconfig=str(tmp_path / "kubeconfig")),
        NS,
        "p0",
        "postgres",
        ["head", "-c", str(size), "/dev/zero"],
        stdin=False,
        stdout=True,
        stderr=io.BytesIO(),
    )
    assert proc.stdout is not None
    me = psutil.Process()
    start = me.memory_info().rss
    peak, total = start, 0
    while data := proc.stdout.read(1024 * 1024):
        total += len(data)
        peak = max(peak, me.memory_info().rss)
    assert proc.wait() == 0
    assert total == size
    assert peak - start < 64 * 1024 * 1024  # a few frames in flight, never the stream


def test_the_kubeconfig_context_is_chosen(
    core: tuple[FakeKubeAPI, client.CoreV1Api], tmp_path: Path
) -> None:
    api, _ = core
    doc = json.loads((tmp_path / "kubeconfig").read_text())
    doc["clusters"].append({"name": "elsewhere", "cluster": {"server": "http://127.0.0.1:9"}})
    doc["contexts"].append({"name": "other", "context": {"cluster": "elsewhere", "user": "fake"}})
    doc["current-context"] = "other"
    path = tmp_path / "two-contexts"
    path.write_text(json.dumps(doc))
    api.put(api.secret(NS, "s", {"k": b"v"}))
    chosen = client.CoreV1Api(kube_client(kubeconfig=str(path), context="fake"))
    assert chosen.read_namespaced_secret("s", NS).data == {"k": "dg=="}
    with pytest.raises(ConfigError, match="context 'nowhere'"):
        kube_client(kubeconfig=str(path), context="nowhere")


def test_an_api_server_speaking_only_v4_streams_output_but_cannot_end_input(
    core: tuple[FakeKubeAPI, client.CoreV1Api], tmp_path: Path
) -> None:
    api, _ = core
    api.add_pod(NS, "p0", containers=("postgres",))
    api.pods.protocols = ("v4.channel.k8s.io",)
    kube = kube_client(kubeconfig=str(tmp_path / "kubeconfig"))
    assert pod_output(kube, NS, "p0", "postgres", ["echo", "v4"]) == (0, "v4\n", "")
    proc = PodProcess(
        kube, NS, "p0", "postgres", ["cat"], stdin=True, stdout=True, stderr=io.BytesIO()
    )
    assert proc.stdin is not None
    proc.stdin.write(b"data")
    with pytest.raises(KubernetesError, match=r"v4\.channel\.k8s\.io.*1\.30"):
        proc.stdin.close()
    proc.kill()
