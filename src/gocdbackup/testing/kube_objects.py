"""What :class:`~gocdbackup.testing.kube.FakeKubeAPI` knows of Kubernetes objects and paths:
resource kinds, ``Status`` answers, JSON merge patch, label selectors, request paths."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

#: resource (plural) → kind, for the resources the fake knows
KINDS = {
    "secrets": "Secret",
    "configmaps": "ConfigMap",
    "pods": "Pod",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "volumesnapshots": "VolumeSnapshot",
}
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def status(code: int, reason: str, message: str, **details: Any) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }
    return web.json_response(body, status=code)


def merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch (what a strategic merge of plain fields amounts to)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def selected(obj: dict[str, Any], selector: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def group_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def route(path: str) -> tuple[str, str, str, str | None, str] | None:
    """(group, namespace, resource, name, subresource) of a namespaced path, or None."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if len(rest) not in (3, 4, 5) or rest[0] != "namespaces":
        return None
    name = rest[3] if len(rest) >= 4 else None
    return group, rest[1], rest[2], name, rest[4] if len(rest) == 5 else ""
