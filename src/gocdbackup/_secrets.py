"""The application key, from Python: its fingerprint, a decrypt check of every encrypted column
of a gocdnext database, and rotation to a new key (the facade over ``ops.secrets``)."""

from __future__ import annotations

from gocdbackup._wiring import postgres_server
from gocdbackup.context import CancelToken, OpContext, ProgressSink, SystemClock
from gocdbackup.credentials import application_key
from gocdbackup.drivers.postgres import GocdnextTables
from gocdbackup.errors import ConfigError
from gocdbackup.gocdnext.kube_secrets import NAME_TEMPLATE
from gocdbackup.gocdnext.secrets import fingerprint
from gocdbackup.model.project_secrets import ProjectSecretsCheck
from gocdbackup.model.rotation import RotationReport
from gocdbackup.model.secrets import SecretsCheck
from gocdbackup.ops import secrets
from gocdbackup.ops.project_secrets import check_project_secrets as check_secrets_of_projects
from gocdbackup.ports import GocdnextData, SecretStore


def _context(progress: ProgressSink | None) -> OpContext:
    return OpContext.using(progress, cancel=CancelToken(), clock=SystemClock())


def _data(db: str | GocdnextData, pg_bindir: str | None) -> GocdnextData:
    return GocdnextTables(postgres_server(db, bindir=pg_bindir)) if isinstance(db, str) else db


def key_fingerprint(*, secret_key: str | None = None, secret_key_file: str | None = None) -> str:
    """The fingerprint of gocdnext's application key (from the value, the file or
    ``$GOCDNEXT_SECRET_KEY``): 16 hex characters that name the key and reveal nothing of it."""
    return fingerprint(application_key(env=secret_key, file=secret_key_file))


def check_secrets(
    db: str | GocdnextData,
    *,
    secret_key: str | None = None,
    secret_key_file: str | None = None,
    progress: ProgressSink | None = None,
    pg_bindir: str | None = None,
) -> SecretsCheck:
    """Trial-decrypt every value of gocdnext's ten encrypted columns in ``db`` (a DSN) with
    the application key; see :func:`gocdbackup.ops.secrets.check_secrets`."""
    key = application_key(env=secret_key, file=secret_key_file)
    return secrets.check_secrets(_data(db, pg_bindir), key, ctx=_context(progress))


def check_project_secrets(
    db: str | GocdnextData,
    project_secrets: SecretStore,
    *,
    template: str = NAME_TEMPLATE,
    pg_bindir: str | None = None,
) -> ProjectSecretsCheck:
    """Every project of ``db`` has its Secret in ``project_secrets``'s namespace (gocdnext's
    Kubernetes secrets backend), and no Secret named by ``template`` is left without a
    project."""
    return check_secrets_of_projects(_data(db, pg_bindir), project_secrets, template=template)


def rotate_key(
    db: str | GocdnextData,
    *,
    secret_key: str | None = None,
    secret_key_file: str | None = None,
    new_secret_key: str | None = None,
    new_secret_key_file: str | None = None,
    dry_run: bool = True,
    confirm: str | None = None,
    batch: int = secrets.DEFAULT_BATCH,
    progress: ProgressSink | None = None,
    pg_bindir: str | None = None,
) -> RotationReport:
    """Re-seal every encrypted value of ``db`` from the old key to the new one (a dry run
    unless ``confirm`` repeats the new key's fingerprint); see
    :func:`gocdbackup.ops.secrets.rotate_key`."""
    old = application_key(env=secret_key, file=secret_key_file)
    if new_secret_key is None and new_secret_key_file is None:
        raise ConfigError("the new key is needed: pass new_secret_key_file=FILE")
    new = application_key(env=new_secret_key, file=new_secret_key_file)
    return secrets.rotate_key(
        _data(db, pg_bindir),
        old,
        new,
        ctx=_context(progress),
        dry_run=dry_run,
        confirm=confirm,
        batch=batch,
    )
