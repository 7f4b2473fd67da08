"""Kubernetes from Python: the Secrets of a namespace (gocdnext's Kubernetes secrets backend),
the application key read from its Secret, and the Helm release's bundled PostgreSQL, through
a kubeconfig (a context selectable) or the pod's service account."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from gocdbackup.context import CancelToken, OpContext, ProgressSink, SystemClock
from gocdbackup.drivers.kube import KubeSecretStore, kube_client
from gocdbackup.drivers.kube.postgres import KubeExecPostgres
from gocdbackup.drivers.kube.release import find_release, release_postgres
from gocdbackup.drivers.kube.snapshots import VolumeSnapshots
from gocdbackup.drivers.kube.workloads import quiesce as quiesce_workloads
from gocdbackup.drivers.kube.workloads import resume as resume_workloads
from gocdbackup.errors import ConfigError, KubernetesForbidden
from gocdbackup.gocdnext.cipher import parse_key
from gocdbackup.gocdnext.helm import EXISTING_SECRET_KEY_ITEM, SECRET_KEY_ITEM, ReleaseNames
from gocdbackup.model.kube import REPO_LABEL, VolumeSnapshotInfo, Workload
from gocdbackup.ports import SecretStore

log = logging.getLogger("gocdbackup.kube")


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


def kube_postgres(
    namespace: str,
    release: str | None = None,
    *,
    pod: str | None = None,
    password: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> KubeExecPostgres:
    """The bundled PostgreSQL of gocdnext's Helm ``release`` in ``namespace`` (found by its
    labels when not named), for :meth:`GocdBackup.backup` and :meth:`GocdBackup.restore`:
    pg_dump and pg_restore run in the pod over exec, SQL goes through a port-forward; the
    database's user, name and password come from the container's environment unless given.
    Close it (or use it as a context manager) to stop the port-forward."""
    api = kube_client(kubeconfig=kubeconfig, context=context)
    chosen = release or find_release(api, namespace)
    return release_postgres(api, namespace, chosen, pod=pod, password=password)


def _release(
    namespace: str, release: str | None, kubeconfig: str | None, context: str | None
) -> tuple[Any, ReleaseNames]:
    api = kube_client(kubeconfig=kubeconfig, context=context)
    return api, ReleaseNames.of(release or find_release(api, namespace))


def _writers(
    namespace: str,
    release: str | None,
    workloads: Sequence[tuple[str, str]] | None,
    kubeconfig: str | None,
    context: str | None,
) -> tuple[Any, Sequence[tuple[str, str]]]:
    if workloads:
        return kube_client(kubeconfig=kubeconfig, context=context), workloads
    api, names = _release(namespace, release, kubeconfig, context)
    return api, names.writers


def quiesce(
    namespace: str,
    release: str | None = None,
    *,
    workloads: Sequence[tuple[str, str]] | None = None,
    timeout: float = 300.0,
    kubeconfig: str | None = None,
    context: str | None = None,
    progress: ProgressSink | None = None,
) -> list[Workload]:
    """Scale the release's server and agents (or ``workloads``: ``(kind, name)`` pairs) to
    zero and wait until their pods are gone; each workload's replica count is noted on it
    first (:func:`resume` puts it back)."""
    api, targets = _writers(namespace, release, workloads, kubeconfig, context)
    ctx = OpContext.using(progress, cancel=CancelToken(), clock=SystemClock())
    return quiesce_workloads(api, namespace, targets, ctx=ctx, timeout=timeout)


def resume(
    namespace: str,
    release: str | None = None,
    *,
    workloads: Sequence[tuple[str, str]] | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> list[Workload]:
    """Scale back every workload of the release (or ``workloads``) a quiesce noted (also
    after a crash)."""
    api, targets = _writers(namespace, release, workloads, kubeconfig, context)
    return resume_workloads(api, namespace, targets)


@contextmanager
def quiesced(
    namespace: str,
    release: str | None = None,
    *,
    workloads: Sequence[tuple[str, str]] | None = None,
    timeout: float = 300.0,
    kubeconfig: str | None = None,
    context: str | None = None,
    progress: ProgressSink | None = None,
) -> Iterator[list[Workload]]:
    """The release quiesced for the time of the ``with`` block, resumed however it is left::

    with gocdbackup.quiesced("gocdnext", "prod"):
        gb.backup(gocdbackup.kube_postgres("gocdnext", "prod"))
    """
    try:
        yield quiesce(
            namespace,
            release,
            workloads=workloads,
            timeout=timeout,
            kubeconfig=kubeconfig,
            context=context,
            progress=progress,
        )
    finally:
        resume(namespace, release, workloads=workloads, kubeconfig=kubeconfig, context=context)


def snapshot_artifacts(
    namespace: str,
    release: str | None = None,
    *,
    repo_id: str,
    claim: str | None = None,
    snapshot_class: str | None = None,
    timeout: float = 600.0,
    kubeconfig: str | None = None,
    context: str | None = None,
    progress: ProgressSink | None = None,
) -> VolumeSnapshotInfo:
    """A CSI VolumeSnapshot of the release's artefact claim (``<release>-gocdnext-server-
    artifacts``, or ``claim`` for ``artifacts.filesystem.existingClaim``), ready to use,
    labelled with the repository ``repo_id`` that keeps it; pass it to
    :meth:`GocdBackup.backup` as ``volume_snapshot`` (quiesce first for one point in time)."""
    api, names = _release(namespace, release, kubeconfig, context)
    ctx = OpContext.using(progress, cancel=CancelToken(), clock=SystemClock())
    chosen = claim or names.artifacts_pvc
    name = f"gocdbackup-{ctx.now():%Y%m%d-%H%M%S}-{os.urandom(3).hex()}"
    return VolumeSnapshots(api, namespace).take(
        chosen,
        name=name,
        labels={REPO_LABEL: repo_id},
        snapshot_class=snapshot_class,
        ctx=ctx,
        timeout=timeout,
    )


def volume_snapshots(
    namespace: str, *, kubeconfig: str | None = None, context: str | None = None
) -> VolumeSnapshots:
    """The VolumeSnapshots of ``namespace`` (list, delete, restore as a new claim)."""
    return VolumeSnapshots(kube_client(kubeconfig=kubeconfig, context=context), namespace)


def release_secret_key(
    namespace: str,
    release: str | None = None,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> str | None:
    """The application key from the release's ``<release>-gocdnext-server-tokens`` Secret, or
    None when there is none (the chart creates it only with ``secretKey.value``) or it may not
    be read; a key that is there but malformed is an error."""
    api, names = _release(namespace, release, kubeconfig, context)
    secret = KubeSecretStore(api, namespace)
    try:
        found = secret.read_secret(names.tokens_secret)
    except KubernetesForbidden as exc:
        log.info("not reading the application key from its Secret: %s", exc)
        return None
    if found is None or not any(
        i in found.data for i in (SECRET_KEY_ITEM, EXISTING_SECRET_KEY_ITEM)
    ):
        return None
    return kube_secret_key(
        f"{namespace}/{names.tokens_secret}", kubeconfig=kubeconfig, context=context
    )
