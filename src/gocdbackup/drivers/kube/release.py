"""A gocdnext Helm release in a namespace: which release it is (named, or found by its
``app.kubernetes.io/instance`` label), and its bundled PostgreSQL reached through the pod (the
database's user, name and password read from the container's own environment, as the chart
passes them)."""

from __future__ import annotations

import json

from kubernetes import client

from gocdbackup.drivers.kube.client import call
from gocdbackup.drivers.kube.exec import pod_output
from gocdbackup.drivers.kube.postgres import KubeExecPostgres
from gocdbackup.errors import ConfigError, KubernetesNotFound
from gocdbackup.gocdnext.helm import (
    CHART,
    DEV_DATABASE,
    INSTANCE_LABEL,
    POSTGRES_CONTAINER,
    ReleaseNames,
)

_NAME_LABEL = "app.kubernetes.io/name"
# the official postgres image's variables, which the chart sets from devDatabase.credentials
_ENV_SCRIPT = 'printf "%s\\n%s\\n%s\\n" "$POSTGRES_USER" "$POSTGRES_DB" "$POSTGRES_PASSWORD"'


def find_release(api: client.ApiClient, namespace: str) -> str:
    """The one gocdnext release of ``namespace``, from the ``app.kubernetes.io/instance``
    label of its pods and workloads (a quiesced release has no server pods left)."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    found: set[str] = set()
    for what, method in (
        ("pods", core.list_namespaced_pod),
        ("deployments", apps.list_namespaced_deployment),
        ("statefulsets", apps.list_namespaced_stateful_set),
    ):
        answer = call(
            api,
            f"listing the {what} of namespace {namespace!r}",
            method,
            namespace,
            label_selector=f"{_NAME_LABEL}={CHART}",
            _preload_content=False,  # the raw document: no model validation of whole objects
        )
        for item in json.loads(answer.data).get("items") or []:
            found.add(
                str(((item.get("metadata") or {}).get("labels") or {}).get(INSTANCE_LABEL, ""))
            )
    names = sorted(found - {""})
    if len(names) != 1:
        raise ConfigError(
            f"namespace {namespace!r} holds {len(names)} gocdnext release(s)"
            + (f" ({', '.join(names)})" if names else "")
            + ": name the one to use with --k8s-release"
        )
    return names[0]


def release_postgres(
    api: client.ApiClient,
    namespace: str,
    release: str,
    *,
    pod: str | None = None,
    container: str = POSTGRES_CONTAINER,
    password: str | None = None,
) -> KubeExecPostgres:
    """The release's bundled database (``<release>-gocdnext-postgres-0``, or ``pod``)."""
    name = pod or ReleaseNames.of(release).postgres_pod
    try:
        code, out, _ = pod_output(api, namespace, name, container, ["sh", "-c", _ENV_SCRIPT])
    except KubernetesNotFound:
        raise KubernetesNotFound(
            f"release {release!r} has no bundled PostgreSQL pod {namespace}/{name} (an external "
            "database is backed up with --db DSN)"
        ) from None
    user, dbname, found = ([*out.split("\n"), "", "", ""])[:3] if code == 0 else ("", "", "")
    return KubeExecPostgres(
        api,
        namespace,
        name,
        container,
        dbname=dbname or DEV_DATABASE,
        user=user or DEV_DATABASE,
        password=password or found or None,
    )
