"""The Secrets of one namespace through the Kubernetes API (a
:class:`~gocdbackup.ports.SecretStore`)."""

from __future__ import annotations

import base64
from typing import Any

from kubernetes import client

from gocdbackup.drivers.kube.client import call
from gocdbackup.errors import KubernetesNotFound
from gocdbackup.model.project_secrets import KubeSecret

#: Secrets per list page
PAGE = 250


def _secret_of(obj: Any) -> KubeSecret:
    meta = obj.metadata
    return KubeSecret(
        name=str(meta.name),
        type=str(obj.type or "Opaque"),
        data={k: base64.b64decode(v) for k, v in (obj.data or {}).items()},
        labels=dict(meta.labels or {}),
        annotations=dict(meta.annotations or {}),
    )


def _body(secret: KubeSecret, resource_version: str | None = None) -> client.V1Secret:
    return client.V1Secret(
        api_version="v1",
        kind="Secret",
        type=secret.type,
        metadata=client.V1ObjectMeta(
            name=secret.name,
            labels=dict(secret.labels) or None,
            annotations=dict(secret.annotations) or None,
            resource_version=resource_version,
        ),
        data={k: base64.b64encode(v).decode() for k, v in secret.data.items()},
    )


class KubeSecretStore:
    """The Secrets of ``namespace``, through ``api`` (see
    :func:`~gocdbackup.drivers.kube.kube_client`)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._namespace = namespace

    def __repr__(self) -> str:
        return f"KubeSecretStore(namespace={self._namespace!r})"

    @property
    def namespace(self) -> str:
        return self._namespace

    def list_secrets(self) -> list[KubeSecret]:
        out: list[KubeSecret] = []
        token: str | None = None
        what = f"listing the Secrets of namespace {self._namespace!r}"
        while True:
            page = call(
                self._api,
                what,
                self._core.list_namespaced_secret,
                self._namespace,
                limit=PAGE,
                _continue=token,
            )
            out.extend(_secret_of(s) for s in page.items or [])
            token = page.metadata._continue if page.metadata else None
            if not token:
                return sorted(out, key=lambda s: s.name)

    def read_secret(self, name: str) -> KubeSecret | None:
        what = f"reading Secret {name!r} of namespace {self._namespace!r}"
        try:
            obj = call(self._api, what, self._core.read_namespaced_secret, name, self._namespace)
        except KubernetesNotFound:
            return None
        return _secret_of(obj)

    def write_secret(self, secret: KubeSecret) -> str:
        what = f"writing Secret {secret.name!r} of namespace {self._namespace!r}"
        try:
            current = call(
                self._api, what, self._core.read_namespaced_secret, secret.name, self._namespace
            )
        except KubernetesNotFound:
            body = _body(secret)
            call(self._api, what, self._core.create_namespaced_secret, self._namespace, body)
            return "created"
        version = current.metadata.resource_version if current.metadata else None
        body = _body(secret, version)
        call(
            self._api,
            what,
            self._core.replace_namespaced_secret,
            secret.name,
            self._namespace,
            body,
        )
        return "replaced"
