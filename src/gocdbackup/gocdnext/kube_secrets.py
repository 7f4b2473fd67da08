"""gocdnext's Kubernetes secrets backend (``GOCDNEXT_SECRET_BACKEND=kubernetes``): one Secret
per project in ``GOCDNEXT_SECRET_K8S_NAMESPACE``, named by ``GOCDNEXT_SECRET_K8S_NAME_TEMPLATE``
(``{slug}`` is the project's slug), each secret an item of its ``data``.  The server only ever
GETs them by name: no labels, no annotations, never written by gocdnext."""

from __future__ import annotations

import re

from gocdbackup.errors import ConfigError

NAME_TEMPLATE = "gocdnext-secrets-{slug}"
SLUG = "{slug}"


def check_template(template: str) -> str:
    """``template`` if it names one Secret per project (``{slug}`` exactly once)."""
    if template.count(SLUG) != 1:
        raise ConfigError(
            f"the Secret name template {template!r} must hold {SLUG} exactly once "
            f"(gocdnext's default: {NAME_TEMPLATE!r})"
        )
    return template


def secret_name(template: str, slug: str) -> str:
    """The Secret holding project ``slug``'s secrets."""
    return check_template(template).replace(SLUG, slug)


def slug_of(template: str, name: str) -> str | None:
    """The project slug a Secret called ``name`` belongs to, or None if the name does not fit
    ``template``."""
    head, tail = check_template(template).split(SLUG)
    found = re.fullmatch(re.escape(head) + "(.+)" + re.escape(tail), name)
    return found.group(1) if found else None
