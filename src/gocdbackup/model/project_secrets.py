"""Kubernetes Secrets as a backup holds them (gocdnext's project secrets in the Kubernetes
backend), and what a check of them against the database's projects found.  The values are
never shown: reprs, summaries and tables name Secrets and item names only."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import field, frozen

from gocdbackup.errors import UnsupportedFormat
from gocdbackup.model.render import html_table, kv_table, to_pandas

KIND = "gocdbackup.kube-secrets"


@frozen(kw_only=True)
class KubeSecret:
    """One Secret: its name, type, items (never shown), labels and annotations."""

    name: str
    type: str = "Opaque"
    data: Mapping[str, bytes] = field(factory=dict, repr=False)
    labels: Mapping[str, str] = field(factory=dict)
    annotations: Mapping[str, str] = field(factory=dict)

    @property
    def items(self) -> list[str]:
        """The names of its items (for a project Secret: the names of the project's secrets)."""
        return sorted(self.data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "data": {k: base64.b64encode(v).decode() for k, v in sorted(self.data.items())},
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KubeSecret:
        return cls(
            name=str(d["name"]),
            type=str(d.get("type") or "Opaque"),
            data={str(k): base64.b64decode(v) for k, v in (d.get("data") or {}).items()},
            labels={str(k): str(v) for k, v in (d.get("labels") or {}).items()},
            annotations={str(k): str(v) for k, v in (d.get("annotations") or {}).items()},
        )


@frozen(kw_only=True)
class KubeSecretsInfo:
    """What a backup holds of the Kubernetes secrets backend (in the manifest)."""

    namespace: str
    template: str
    count: int

    def describe(self) -> str:
        return f"{self.count} project Secret(s) of namespace {self.namespace!r}"


def secrets_to_json(namespace: str, template: str, secrets: Iterable[KubeSecret]) -> bytes:
    """The document a backup stores (inside the encrypted repository, never elsewhere)."""
    doc = {
        "kind": KIND,
        "namespace": namespace,
        "template": template,
        "secrets": [s.to_dict() for s in sorted(secrets, key=lambda s: s.name)],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def secrets_from_json(raw: bytes) -> tuple[str, str, list[KubeSecret]]:
    """(namespace, template, Secrets) of a stored document."""
    try:
        doc = json.loads(raw)
        if doc.get("kind") != KIND:
            raise ValueError("not a Kubernetes Secrets document")
        return (
            str(doc["namespace"]),
            str(doc["template"]),
            [KubeSecret.from_dict(s) for s in doc["secrets"]],
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnsupportedFormat(f"malformed Kubernetes Secrets in the backup: {exc}") from None


@frozen(kw_only=True)
class ProjectSecretsCheck:
    """Every project of the database against the Secrets of the namespace: projects without
    their Secret (their secrets are gone), Secrets without a project (left behind)."""

    namespace: str
    template: str
    projects: int
    missing: tuple[str, ...] = ()  # project slugs without a Secret
    orphaned: tuple[str, ...] = ()  # Secret names that fit the template, of no project

    @property
    def passed(self) -> bool:
        return not self.missing and not self.orphaned

    def verdict(self) -> str:
        found = self.projects - len(self.missing)
        head = f"{found}/{self.projects} projects have their Secret in {self.namespace!r}"
        if self.passed:
            return f"ok: {head}"
        parts = [head]
        if self.missing:
            parts.append(f"missing for {', '.join(self.missing[:10])}")
        if self.orphaned:
            parts.append(f"{len(self.orphaned)} without a project: {', '.join(self.orphaned[:10])}")
        return "; ".join(parts)

    def summary(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "template": self.template,
            "projects": self.projects,
            "missing": list(self.missing),
            "orphaned": list(self.orphaned),
            "passed": self.passed,
        }

    def rows(self) -> list[dict[str, Any]]:
        return [{"project": s, "problem": "no Secret"} for s in self.missing] + [
            {"secret": n, "problem": "no project"} for n in self.orphaned
        ]

    def to_pandas(self) -> Any:
        return to_pandas(self.rows())

    def __repr__(self) -> str:
        return f"<ProjectSecretsCheck {self.verdict()}>"

    def _repr_html_(self) -> str:
        head = kv_table([("verdict", self.verdict())], caption="Project Secrets")
        return head + (html_table(self.rows(), caption="problems") if self.rows() else "")


@frozen(kw_only=True)
class SecretsRestore:
    """What restoring a backup's Secrets did (or, in a dry run, would do)."""

    namespace: str
    dry_run: bool
    created: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    def describe(self) -> str:
        verb = ("would create", "would replace") if self.dry_run else ("created", "replaced")
        return (
            f"Secrets in {self.namespace!r}: {verb[0]} {len(self.created)}, {verb[1]} "
            f"{len(self.replaced)}, {len(self.unchanged)} already as backed up"
        )

    def summary(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "dry_run": self.dry_run,
            "created": list(self.created),
            "replaced": list(self.replaced),
            "unchanged": list(self.unchanged),
        }

    def __repr__(self) -> str:
        return f"<SecretsRestore {self.describe()}>"
