"""Kubernetes from Python: the Secrets of a namespace (gocdnext's Kubernetes secrets backend)
and the application key read from its Secret, through a kubeconfig (a context selectable) or
the pod's service account."""

from __future__ import annotations

from gocdbackup.drivers.kube import KubeSecretStore, kube_client
from gocdbackup.errors import ConfigError
from gocdbackup.gocdnext.cipher import parse_key
from gocdbackup.gocdnext.helm import EXISTING_SECRET_KEY_ITEM, SECRET_KEY_ITEM
from gocdbackup.ports import SecretStore


def kube_secrets(
    namespace: str, *, kubeconfig: str | None = None, context: str | None = None
) -> SecretStore:
    """The Secrets of ``namespace`` (what ``project_secrets=`` of
    :meth:`GocdBackup.backup`, :meth:`GocdBackup.restore` and :func:`check_project_secrets`
    take)."""
    if not namespace:
        raise ConfigError("a Kubernetes namespace is needed")
    return KubeSecretStore(kube_client(kubeconfig=kubeconfig, context=context), namespace)


def split_secret_ref(ref: str, namespace: str | None = None) -> tuple[str, str, str | None]:
    """``[NAMESPACE/]NAME[:ITEM]`` as (namespace, name, item or None)."""
    where, _, item = ref.partition(":")
    ns, _, name = where.rpartition("/")
    ns = ns or namespace or ""
    if not name or not ns:
        raise ConfigError(
            f"{ref!r} does not name a Secret: write NAMESPACE/NAME (and :ITEM for the item "
            f"holding the key; default {SECRET_KEY_ITEM} or {EXISTING_SECRET_KEY_ITEM})"
        )
    return ns, name, item or None


def kube_secret_key(
    ref: str,
    *,
    namespace: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> str:
    """gocdnext's application key from the Kubernetes Secret ``ref``
    (``[NAMESPACE/]NAME[:ITEM]``; the Helm chart's is ``<release>-gocdnext-server-tokens``,
    item ``secret-key``, or ``SECRET_KEY`` in an existing Secret), validated as gocdnext
    validates it (not trimmed); as 64 hex characters for ``secret_key=``."""
    ns, name, item = split_secret_ref(ref, namespace)
    secret = kube_secrets(ns, kubeconfig=kubeconfig, context=context).read_secret(name)
    if secret is None:
        raise ConfigError(f"there is no Secret {name!r} in namespace {ns!r}")
    items = [item] if item else [SECRET_KEY_ITEM, EXISTING_SECRET_KEY_ITEM]
    found = next((i for i in items if i in secret.data), None)
    if found is None:
        raise ConfigError(
            f"Secret {ns}/{name} has no item {' or '.join(items)} (it has: "
            f"{', '.join(secret.items) or 'none'})"
        )
    try:
        text = secret.data[found].decode()
    except UnicodeDecodeError:
        raise ConfigError(f"item {found} of Secret {ns}/{name} is not text") from None
    return parse_key(text, source=f"item {found} of Secret {ns}/{name}").hex()
