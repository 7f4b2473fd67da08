"""gocdnext's Kubernetes secrets backend: the project Secrets backed up inside the encrypted
repository (a component of the backup, never written anywhere in plaintext), checked against
the database's projects, and restored (create or replace, a dry run first)."""

from __future__ import annotations

import io
import logging

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError, ConfirmationMismatch
from gocdbackup.gocdnext.kube_secrets import check_template, secret_name, slug_of
from gocdbackup.model.backup import BackupSet, Component
from gocdbackup.model.project_secrets import (
    KubeSecret,
    KubeSecretsInfo,
    ProjectSecretsCheck,
    SecretsRestore,
    secrets_from_json,
    secrets_to_json,
)
from gocdbackup.ops._components import checked_stream
from gocdbackup.ports import GocdnextData, SecretStore
from gocdbackup.repository import Repository, chunk_stream, store_stream

log = logging.getLogger("gocdbackup.ops.project_secrets")

SECRETS_KIND = "kube_secrets"


def project_secrets(store: SecretStore, template: str) -> list[KubeSecret]:
    """The Secrets of ``store``'s namespace whose names fit ``template``."""
    check_template(template)
    return [s for s in store.list_secrets() if slug_of(template, s.name) is not None]


def check_project_secrets(
    data: GocdnextData, store: SecretStore, *, template: str
) -> ProjectSecretsCheck:
    """Every project of the database has its Secret, and no Secret fitting ``template`` is
    left without a project."""
    slugs = data.project_slugs()
    names = {s.name for s in project_secrets(store, template)}
    wanted = {secret_name(template, slug): slug for slug in slugs}
    check = ProjectSecretsCheck(
        namespace=store.namespace,
        template=template,
        projects=len(slugs),
        missing=tuple(sorted(slug for name, slug in wanted.items() if name not in names)),
        orphaned=tuple(sorted(names - wanted.keys())),
    )
    log.info("project Secrets: %s", check.verdict())
    return check


def store_project_secrets(
    repo: Repository,
    store: SecretStore,
    *,
    template: str,
    known: dict[str, int],
    ctx: OpContext,
) -> tuple[Component, KubeSecretsInfo]:
    """The project Secrets as a component of a backup (chunked, compressed, encrypted)."""
    found = project_secrets(store, template)
    raw = secrets_to_json(store.namespace, template, found)
    component = store_stream(
        repo,
        chunk_stream(io.BytesIO(raw), repo.chunker),
        kind=SECRETS_KIND,
        known=known,
        ctx=ctx,
        phase="kube-secrets",
    )
    info = KubeSecretsInfo(namespace=store.namespace, template=template, count=len(found))
    return component, info


def load_project_secrets(
    repo: Repository, backup: BackupSet, ctx: OpContext
) -> list[KubeSecret] | None:
    """The project Secrets a backup holds (None: taken without them)."""
    for component in backup.components:
        if component.kind == SECRETS_KIND:
            raw = b"".join(checked_stream(repo, component, ctx, phase="kube-secrets"))
            return secrets_from_json(raw)[2]
    return None


def restore_project_secrets(
    repo: Repository,
    backup: BackupSet,
    store: SecretStore,
    *,
    ctx: OpContext,
    dry_run: bool = True,
    confirm: str | None = None,
) -> SecretsRestore:
    """Write the backup's project Secrets into ``store``'s namespace: each one missing is
    created, each one that differs is replaced, each one as backed up is left alone.  A dry
    run (the default) only says which; otherwise ``confirm`` must repeat the backup id.
    Secrets the backup does not hold are never touched."""
    if not dry_run and confirm != backup.id:
        raise ConfirmationMismatch(
            f"confirm must repeat the backup id {backup.id}; no Secret was written"
        )
    secrets = load_project_secrets(repo, backup, ctx)
    if secrets is None:
        raise ConfigError(
            f"backup {backup.id} holds no Kubernetes Secrets (it was taken without "
            "--secrets-namespace)"
        )
    outcome: dict[str, list[str]] = {"created": [], "replaced": [], "unchanged": []}
    for n, secret in enumerate(secrets):
        ctx.check()
        ctx.report("kube-secrets", n, len(secrets), unit="secrets")
        current = store.read_secret(secret.name)
        if current is not None and (current.type, current.data) == (secret.type, secret.data):
            outcome["unchanged"].append(secret.name)
        elif dry_run:
            outcome["created" if current is None else "replaced"].append(secret.name)
        else:
            outcome[store.write_secret(secret)].append(secret.name)
    ctx.report("kube-secrets", len(secrets), len(secrets), unit="secrets")
    result = SecretsRestore(
        namespace=store.namespace,
        dry_run=dry_run,
        created=tuple(outcome["created"]),
        replaced=tuple(outcome["replaced"]),
        unchanged=tuple(outcome["unchanged"]),
    )
    log.info("%s", result.describe())
    return result
