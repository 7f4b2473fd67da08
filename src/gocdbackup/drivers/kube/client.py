"""Reaching the Kubernetes API: a kubeconfig (``--kubeconfig``/``$KUBECONFIG``/
``~/.kube/config``, ``--context`` as kubectl spells it) or, inside a pod, its service account;
API errors translated into the error tree by HTTP status, never by their text."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import stamina
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from gocdbackup.errors import (
    ConfigError,
    KubernetesError,
    KubernetesForbidden,
    KubernetesNotFound,
)

_DEFAULT_KUBECONFIG = "~/.kube/config"
#: statuses worth another try: throttled, or the API server (or its etcd) unavailable
_TRANSIENT = {429, 500, 502, 503, 504}


def kube_client(*, kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """An API client from ``kubeconfig`` (or ``$KUBECONFIG``, or ``~/.kube/config``) and its
    ``context`` (default: the current one); without any kubeconfig, the service account of the
    pod this runs in."""
    path = kubeconfig or os.environ.get("KUBECONFIG") or None
    default = Path(_DEFAULT_KUBECONFIG).expanduser()
    try:
        if path or context or default.exists():
            api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context, persist_config=False
            )
            return api
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        return client.ApiClient(cfg)
    except (config.ConfigException, OSError, ValueError, TypeError) as exc:
        where = path or (str(default) if default.exists() else "the pod's service account")
        chosen = f", context {context!r}" if context else ""
        raise ConfigError(
            f"no usable Kubernetes configuration ({where}{chosen}): {_first_line(exc)}; give "
            "--kubeconfig and --context as for kubectl"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _status_message(body: Any) -> str:
    """The ``message`` of the API server's Status answer (shown, never interpreted)."""
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, TypeError):
        return ""
    return str(doc.get("message") or "") if isinstance(doc, dict) else ""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in _TRANSIENT
    return isinstance(exc, urllib3.exceptions.HTTPError)


def host_of(api: client.ApiClient) -> str:
    return str(api.configuration.host)


def call(api: client.ApiClient, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` retried on throttling, unavailability and broken connections
    (a few times, backing off), its errors translated."""
    with translating(api, what):
        for attempt in stamina.retry_context(on=_is_transient, attempts=4, timeout=30):
            with attempt:
                return fn(*args, **kwargs)
    raise AssertionError("unreachable")  # pragma: no cover


def status_error(
    what: str, status: int | None, body: Any, reason: str | None = None
) -> KubernetesError:
    """The error for the API server's answer ``status`` to the request doing ``what``: the
    ``message`` of the ``Status`` document ``body`` is shown (else ``reason``), never
    interpreted."""
    message = _status_message(body) or str(reason or "")
    if status in (401, 403):
        return KubernetesForbidden(
            f"{what}: the Kubernetes API refused it ({status}): {message}; the "
            "credentials' RBAC role needs this permission (see docs/kubernetes.md)",
            status=status,
        )
    if status == 404:
        return KubernetesNotFound(f"{what}: not found ({message})", status=status)
    return KubernetesError(
        f"{what}: the Kubernetes API answered {status}: {message}", status=status
    )


@contextmanager
def translating(api: client.ApiClient, what: str) -> Iterator[None]:
    """Kubernetes client errors as gocdbackup's, by HTTP status: 401/403 →
    :class:`KubernetesForbidden`, 404 → :class:`KubernetesNotFound`, anything else (and no
    answer at all) → :class:`KubernetesError`."""
    try:
        yield
    except ApiException as exc:
        raise status_error(what, exc.status, exc.body, exc.reason) from None
    except urllib3.exceptions.HTTPError as exc:
        raise KubernetesError(
            f"{what}: cannot reach the Kubernetes API at {host_of(api)} ({type(exc).__name__})"
        ) from None
