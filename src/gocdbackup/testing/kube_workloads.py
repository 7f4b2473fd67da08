"""Deployments and StatefulSets in :class:`~gocdbackup.testing.kube.FakeKubeAPI`: their
``scale`` subresource, and pods that come and go as a controller would make them (after
``FakeKubeAPI.pod_delay`` seconds; never, for the pods of a workload in
``FakeKubeAPI.stuck``)."""

from __future__ import annotations

import copy
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gocdbackup.testing.kube import FakeKubeAPI

WORKLOADS = {"Deployment": "deployments", "StatefulSet": "statefulsets"}


def workload(
    kind: str, namespace: str, name: str, replicas: int, labels: dict[str, str]
) -> dict[str, Any]:
    """A Deployment or StatefulSet whose pods carry ``labels``."""
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"namespace": namespace, "name": name, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}},
        },
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v1 ``Scale`` of a workload."""
    meta = obj["metadata"]
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "spec": {"replicas": obj["spec"].get("replicas", 0)},
        "status": {"replicas": obj.get("status", {}).get("replicas", 0)},
    }


def rescale(api: FakeKubeAPI, obj: dict[str, Any], replicas: int) -> dict[str, Any]:
    """Set the workload's replicas; its pods follow after ``api.pod_delay`` seconds."""
    new = copy.deepcopy(obj)
    new["spec"]["replicas"] = replicas
    meta = new["metadata"]
    stored = api.put(new, resource=WORKLOADS[new["kind"]])
    if (meta["namespace"], meta["name"]) in api.stuck:
        return stored

    def settle() -> None:
        labels = new["spec"]["template"]["metadata"]["labels"]
        pods = pods_of(api, meta["namespace"], labels)
        for pod in pods[replicas:]:
            api.delete("pods", meta["namespace"], pod)
        for n in range(len(pods), replicas):
            api.add_pod(meta["namespace"], f"{meta['name']}-{n}", labels=labels)
        current = api.get(WORKLOADS[new["kind"]], meta["namespace"], meta["name"])
        if current is not None:
            current["status"] = {"replicas": replicas, "readyReplicas": replicas}
            api.put(current, resource=WORKLOADS[new["kind"]])

    timer = threading.Timer(api.pod_delay, settle)
    timer.daemon = True
    timer.start()
    return stored


def pods_of(api: FakeKubeAPI, namespace: str, labels: dict[str, str]) -> list[str]:
    out = []
    for name in api.names("pods", namespace):
        pod = api.get("pods", namespace, name)
        have = (pod or {}).get("metadata", {}).get("labels") or {}
        if all(have.get(k) == v for k, v in labels.items()):
            out.append(name)
    return out
