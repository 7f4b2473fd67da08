"""The click options several commands share (database, artefact store, quarantine, grace
window, transfers; the repository's are in :mod:`gocdbackup.cli.flags`), the parsing of
option values (durations, percentages), and opening the library with what the options gave."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta
from typing import Any, TypeVar

import click

from gocdbackup import GocdBackup, Reconciler, kube_postgres, kube_secret_key, kube_secrets
from gocdbackup.cli.common import ProgressBar, State
from gocdbackup.cli.flags import repo_options, storage_options
from gocdbackup.errors import ConfigError
from gocdbackup.gocdnext.kube_secrets import NAME_TEMPLATE
from gocdbackup.model.durations import parse_duration
from gocdbackup.ports import Postgres, SecretStore

F = TypeVar("F", bound=Callable[..., Any])


# -- option values -----------------------------------------------------------------------------


def to_duration(value: str) -> timedelta:
    """A duration (``30s``, ``6h``, ``7d``...); anything else is a usage error (exit code 2)."""
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def to_percent(value: str) -> float:
    """``10``, ``10%`` or ``10.5%`` as a number from 0 to 100; anything else is a usage
    error (exit code 2), raised while click parses the command line."""
    text = value.strip().removesuffix("%").strip()
    try:
        percent = float(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a percentage") from None
    if not 0.0 <= percent <= 100.0:  # also NaN and infinities
        raise click.BadParameter(f"{value!r} is not between 0 and 100 %")
    return percent


def _remember_artifact_options(
    ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> None:
    ctx.ensure_object(State).artifact_options = storage_options(values)


# -- shared options ----------------------------------------------------------------------------


def artifact_options(fn: F) -> F:
    return click.option(
        "--artifacts-option",
        "artifacts_option",
        multiple=True,
        metavar="KEY=VALUE",
        expose_value=False,
        callback=_remember_artifact_options,
        help="An fsspec storage option for --artifacts, e.g. endpoint_url=http://minio:9000 "
        "or version_aware=true (repeatable; never printed).",
    )(fn)


def transfers_option(fn: F) -> F:
    return click.option(
        "--transfers",
        type=click.IntRange(1, 256),
        default=8,
        show_default=True,
        help="Artefact objects copied or restored at once.",
    )(fn)


def _db_options(fn: F, *, required: bool) -> F:
    fn = click.option(
        "--pg-bindir",
        metavar="DIR",
        help="Directory holding pg_dump/pg_restore (default: discovered).",
    )(fn)
    return click.option(
        "--db",
        envvar="GOCDBACKUP_DB",
        required=required,
        metavar="DSN",
        help="libpq connection string or URI; PG* variables are honoured "
        "(default: $GOCDBACKUP_DB).",
    )(fn)


def db_option(fn: F) -> F:
    return _db_options(fn, required=True)


def store_option(required: bool = True) -> Callable[[F], F]:
    """``--artifacts`` (gocdnext's artefact store) and its ``--artifacts-option``."""

    def deco(fn: F) -> F:
        fn = artifact_options(fn)
        return click.option(
            "--artifacts",
            envvar="GOCDBACKUP_ARTIFACTS",
            required=required,
            metavar="STORE_URL",
            help="gocdnext's artefact store: file:///var/lib/gocdnext/artifacts, s3://bucket, "
            "gs://bucket (default: $GOCDBACKUP_ARTIFACTS).",
        )(fn)

    return deco


def quarantine_option(fn: F) -> F:
    return click.option(
        "--quarantine",
        metavar="STORE_URL",
        help="Keep quarantined objects in this store instead of under "
        ".gocdbackup-quarantine/ in the artefact store itself.",
    )(fn)


def grace_option(fn: F) -> F:
    return click.option(
        "--grace",
        default="6h",
        show_default=True,
        metavar="DURATION",
        help="Rows and objects newer than this are 'too_recent' and never acted on.",
    )(fn)


# -- the library, opened with what the options gave ----------------------------------------------


def open_repo(
    state: State,
    repo: str,
    password_file: str | None,
    progress: ProgressBar | None = None,
    **kw: Any,
) -> GocdBackup:
    return GocdBackup(
        repo,
        password_file=password_file,
        progress=progress if progress and progress.enabled else None,
        storage_options=state.storage_options,
        artifact_options=state.artifact_options,
        **kw,
    )


def open_reconciler(
    state: State,
    db: str | None,
    artifacts: str,
    bar: ProgressBar | None,
    *,
    pg_bindir: str | None = None,
    quarantine: str | None = None,
    transfers: int = 8,
) -> Reconciler:
    return Reconciler(
        db or "",
        artifacts,
        artifact_options=state.artifact_options,
        quarantine=quarantine,
        progress=bar if bar and bar.enabled else None,
        pg_bindir=pg_bindir,
        transfers=transfers,
    )


# -- Kubernetes ----------------------------------------------------------------------------------


def kube_options(fn: F) -> F:
    """``--kubeconfig`` and ``--context``, as kubectl spells them."""
    fn = click.option(
        "--context",
        "kube_context",
        metavar="NAME",
        help="The kubeconfig context to use (default: its current context).",
    )(fn)
    return click.option(
        "--kubeconfig",
        type=click.Path(dir_okay=False),
        help="The kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else the pod's "
        "service account).",
    )(fn)


def project_secrets_options(fn: F) -> F:
    """Where gocdnext's Kubernetes secrets backend keeps the project Secrets."""
    fn = click.option(
        "--secrets-name-template",
        envvar="GOCDNEXT_SECRET_K8S_NAME_TEMPLATE",
        default=NAME_TEMPLATE,
        show_default=True,
        metavar="TEMPLATE",
        help="How the project Secrets are named ({slug}: the project's slug) "
        "(default: $GOCDNEXT_SECRET_K8S_NAME_TEMPLATE).",
    )(fn)
    return click.option(
        "--secrets-namespace",
        envvar="GOCDNEXT_SECRET_K8S_NAMESPACE",
        metavar="NS",
        help="The namespace of gocdnext's Kubernetes secrets backend: its project Secrets "
        "(gocdnext-secrets-<slug>) go with the database (default: "
        "$GOCDNEXT_SECRET_K8S_NAMESPACE).",
    )(fn)


def secret_key_k8s_option(fn: F) -> F:
    return click.option(
        "--secret-key-k8s",
        metavar="[NS/]NAME[:ITEM]",
        help="Read gocdnext's application key from this Kubernetes Secret (the Helm chart's: "
        "<release>-gocdnext-server-tokens, item secret-key; or SECRET_KEY).",
    )(fn)


def project_store(
    namespace: str | None, kubeconfig: str | None, kube_context: str | None
) -> SecretStore | None:
    """The project Secrets' namespace the options name (None: not asked for)."""
    if not namespace:
        return None
    return kube_secrets(namespace, kubeconfig=kubeconfig, context=kube_context)


def k8s_key(
    secret_key_k8s: str | None,
    secret_key_file: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
) -> str | None:
    """The application key read from ``--secret-key-k8s`` (None: not given)."""
    if secret_key_k8s is None:
        return None
    if secret_key_file is not None:
        raise click.UsageError("give --secret-key-file or --secret-key-k8s, not both")
    return kube_secret_key(secret_key_k8s, kubeconfig=kubeconfig, context=kube_context)


_KINDS = {"deployment": "Deployment", "statefulset": "StatefulSet"}


def _workloads(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    out = []
    for value in values:
        kind, _, name = value.partition("/")
        if kind.lower() not in _KINDS or not name:
            raise click.BadParameter(f"{value!r}: write deployment/NAME or statefulset/NAME")
        out.append((_KINDS[kind.lower()], name))
    return tuple(out)


def workload_option(fn: F) -> F:
    return click.option(
        "--workload",
        "workloads",
        multiple=True,
        metavar="KIND/NAME",
        callback=_workloads,
        help="A workload to quiesce instead of the release's server and agents "
        "(deployment/NAME or statefulset/NAME; repeatable).",
    )(fn)


def k8s_release_option(fn: F) -> F:
    return click.option(
        "--k8s-release",
        metavar="RELEASE",
        help="The gocdnext Helm release (default: the namespace's only one).",
    )(fn)


def db_or_release_options(fn: F) -> F:
    """``--db DSN``, or the bundled PostgreSQL of a Helm release (``--k8s-namespace``,
    ``--k8s-release``, ``--k8s-pod``), reached through the Kubernetes API."""
    fn = click.option(
        "--k8s-pod",
        metavar="POD",
        help="The PostgreSQL pod, when not the release's <release>-gocdnext-postgres-0.",
    )(fn)
    fn = k8s_release_option(fn)
    fn = click.option(
        "--k8s-namespace",
        metavar="NS",
        help="Instead of --db: the namespace of a gocdnext Helm release whose bundled "
        "PostgreSQL is dumped and restored in its pod (exec) and queried through a "
        "port-forward.",
    )(fn)
    return _db_options(fn, required=False)


def database_of(
    stack: ExitStack,
    *,
    db: str | None,
    k8s_namespace: str | None,
    k8s_release: str | None,
    k8s_pod: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
) -> str | Postgres:
    """The database the options name (a release's is closed when ``stack`` is); ``--db`` typed
    with ``--k8s-namespace`` is a usage error ($GOCDBACKUP_DB is then ignored)."""
    if k8s_namespace is None:
        if k8s_release or k8s_pod:
            raise click.UsageError("--k8s-release and --k8s-pod need --k8s-namespace")
        if not db:
            raise click.UsageError("give --db DSN (or $GOCDBACKUP_DB), or --k8s-namespace NS")
        return db
    source = click.get_current_context().get_parameter_source("db")
    if db and source is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("give --db or --k8s-namespace, not both")
    postgres = kube_postgres(
        k8s_namespace, k8s_release, pod=k8s_pod, kubeconfig=kubeconfig, context=kube_context
    )
    return stack.enter_context(postgres)


__all__ = ["repo_options", "storage_options"]  # from gocdbackup.cli.flags, used with these
