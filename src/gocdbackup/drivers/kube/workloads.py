"""Quiescing gocdnext by scaling its workloads to zero (gocdnext has no read-only switch): each
workload's replica count is written in an annotation on it before it is scaled down, so
:func:`resume` puts back exactly what was running, even from another process after a crash."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kubernetes import client

from gocdbackup.context import OpContext
from gocdbackup.drivers.kube.client import call
from gocdbackup.errors import KubernetesError, KubernetesNotFound
from gocdbackup.model.kube import QUIESCE_ANNOTATION, Workload

log = logging.getLogger("gocdbackup.drivers.kube")

_POLL = 0.5


class Workloads:
    """Deployments and StatefulSets of one namespace, through the apps/v1 API."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self._api, self._ns = api, namespace
        self._apps = client.AppsV1Api(api)
        self._core = client.CoreV1Api(api)

    def _method(self, kind: str, verb: str, sub: str = "") -> Any:
        plural = {"Deployment": "deployment", "StatefulSet": "stateful_set"}[kind]
        return getattr(self._apps, f"{verb}_namespaced_{plural}{sub}")

    def read(self, kind: str, name: str) -> dict[str, Any]:
        answer = call(
            self._api,
            f"reading {kind} {self._ns}/{name}",
            self._method(kind, "read"),
            name,
            self._ns,
            _preload_content=False,
        )
        doc: dict[str, Any] = json.loads(answer.data)
        return doc

    def annotate(self, kind: str, name: str, value: str | None) -> None:
        body = {"metadata": {"annotations": {QUIESCE_ANNOTATION: value}}}
        what = f"annotating {kind} {self._ns}/{name}"
        call(self._api, what, self._method(kind, "patch"), name, self._ns, body)

    def scale(self, kind: str, name: str, replicas: int) -> None:
        what = f"scaling {kind} {self._ns}/{name} to {replicas}"
        scale = self._method(kind, "patch", "_scale")
        call(self._api, what, scale, name, self._ns, {"spec": {"replicas": replicas}})

    def pods(self, selector: dict[str, str]) -> list[str]:
        text = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        answer = call(
            self._api,
            f"listing the pods of namespace {self._ns!r}",
            self._core.list_namespaced_pod,
            self._ns,
            label_selector=text,
            _preload_content=False,
        )
        return [p["metadata"]["name"] for p in json.loads(answer.data).get("items") or []]


def _state(workloads: Workloads, kind: str, name: str) -> Workload:
    doc = workloads.read(kind, name)
    noted = ((doc.get("metadata") or {}).get("annotations") or {}).get(QUIESCE_ANNOTATION)
    return Workload(
        kind=kind,
        name=name,
        replicas=int((doc.get("spec") or {}).get("replicas") or 0),
        noted=None if noted is None else int(noted),
        selector=dict(((doc.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}),
    )


def quiesce(
    api: client.ApiClient,
    namespace: str,
    targets: Sequence[tuple[str, str]],
    *,
    ctx: OpContext,
    timeout: float = 300.0,
) -> list[Workload]:
    """Scale each ``(kind, name)`` (those that exist) to 0, its replica count noted first in
    an annotation (a count already noted by an interrupted quiesce is kept), then wait until
    their pods are gone."""
    workloads = Workloads(api, namespace)
    done: list[Workload] = []
    for kind, name in targets:
        try:
            state = _state(workloads, kind, name)
        except KubernetesNotFound:
            log.info("no %s %s/%s to quiesce", kind, namespace, name)
            continue
        if state.noted is None:
            workloads.annotate(kind, name, str(state.replicas))
            state = state.noting(state.replicas)
        workloads.scale(kind, name, 0)
        done.append(state)
    deadline = time.monotonic() + timeout
    for state in done:
        while left := workloads.pods(state.selector) if state.selector else []:
            ctx.check()
            if time.monotonic() > deadline:
                raise KubernetesError(
                    f"{state.kind} {namespace}/{state.name} still has {len(left)} pod(s) after "
                    f"{timeout:.0f} s ({', '.join(left[:5])}); resume with 'gocdbackup k8s "
                    f"resume --k8s-namespace {namespace}'"
                )
            time.sleep(_POLL)
    log.info("quiesced %s", ", ".join(f"{w.kind} {w.name}" for w in done) or "nothing")
    return done


def resume(
    api: client.ApiClient, namespace: str, targets: Sequence[tuple[str, str]]
) -> list[Workload]:
    """Scale each workload that carries a noted replica count back to it and drop the note."""
    workloads = Workloads(api, namespace)
    resumed: list[Workload] = []
    for kind, name in targets:
        try:
            state = _state(workloads, kind, name)
        except KubernetesNotFound:
            continue
        if state.noted is None:
            continue
        workloads.scale(kind, name, state.noted)
        workloads.annotate(kind, name, None)
        resumed.append(state)
    log.info("resumed %s", ", ".join(f"{w.kind} {w.name}" for w in resumed) or "nothing")
    return resumed


@contextmanager
def quiesced(
    api: client.ApiClient,
    namespace: str,
    targets: Sequence[tuple[str, str]],
    *,
    ctx: OpContext,
    timeout: float = 300.0,
) -> Iterator[list[Workload]]:
    """:func:`quiesce` for the time of the context; :func:`resume` however it is left (an
    error, Ctrl-C); a crash leaves the notes for ``gocdbackup k8s resume``."""
    try:
        yield quiesce(api, namespace, targets, ctx=ctx, timeout=timeout)
    finally:
        resume(api, namespace, targets)
