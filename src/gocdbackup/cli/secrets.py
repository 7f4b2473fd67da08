"""``gocdbackup secrets check|rotate|fingerprint``: gocdnext's application key against its
database (escrow and recovery of the key: ``secrets escrow|recover``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.table import Column, Table

from gocdbackup import check_project_secrets, check_secrets, key_fingerprint, rotate_key
from gocdbackup.cli.common import (
    EXIT_FAILED,
    JsonGroup,
    State,
    command_line,
    emit,
    handle_errors,
    next_steps,
    out_console,
    progress_bar,
)
from gocdbackup.cli.options import (
    db_option,
    k8s_key,
    kube_options,
    open_repo,
    project_secrets_options,
    project_store,
    repo_options,
    secret_key_k8s_option,
)
from gocdbackup.model.project_secrets import ProjectSecretsCheck
from gocdbackup.model.secrets import SecretsCheck

F = TypeVar("F", bound=Callable[..., Any])


def secret_key_option(fn: F) -> F:
    return click.option(
        "--secret-key-file",
        type=click.Path(dir_okay=False),
        help="gocdnext's application key (64 hex characters; one trailing newline is "
        "ignored) (default: $GOCDNEXT_SECRET_KEY, which must have none).",
    )(fn)


@click.group(cls=JsonGroup)
def secrets() -> None:
    """gocdnext's application key: fingerprint, decrypt check, rotation, escrow."""


def print_check(check: SecretsCheck) -> None:
    table = Table(
        Column("column", no_wrap=True),
        Column("ok", justify="right"),
        Column("failed", justify="right"),
        Column("empty", justify="right"),
        "failing rows",
        box=None,
    )
    for c in check.columns:
        failing = ", ".join(c.failing[:5]) + (" …" if len(c.failing) > 5 else "")
        table.add_row(
            c.column if c.present else f"{c.column} (absent)",
            f"{c.ok:,}",
            f"[red]{c.failed:,}[/]" if c.failed else "0",
            f"{c.empty:,}",
            failing,
        )
    out_console.print(table)
    out_console.print(check.verdict(), highlight=False, markup=False)


@secrets.command(name="check")
@db_option
@secret_key_option
@secret_key_k8s_option
@project_secrets_options
@kube_options
@click.pass_obj
def secrets_check(
    state: State,
    *,
    db: str,
    pg_bindir: str | None,
    secret_key_file: str | None,
    secret_key_k8s: str | None,
    secrets_namespace: str | None,
    secrets_name_template: str,
    kubeconfig: str | None,
    kube_context: str | None,
) -> None:
    """Trial-decrypt every value of gocdnext's ten encrypted columns (never shows a value);
    with --secrets-namespace, also check that every project has its Secret and no Secret is
    left without a project."""
    projects: ProjectSecretsCheck | None = None
    with handle_errors(state), progress_bar(state) as bar:
        key = k8s_key(secret_key_k8s, secret_key_file, kubeconfig, kube_context)
        check = check_secrets(
            db,
            secret_key=key,
            secret_key_file=secret_key_file,
            progress=bar if bar.enabled else None,
            pg_bindir=pg_bindir,
        )
        store = project_store(secrets_namespace, kubeconfig, kube_context)
        if store is not None:
            projects = check_project_secrets(
                db, store, template=secrets_name_template, pg_bindir=pg_bindir
            )
    document = check.summary()
    if projects is not None:
        document["project_secrets"] = projects.summary()

    def human() -> None:
        print_check(check)
        if projects is not None:
            out_console.print(f"project Secrets: {projects.verdict()}", highlight=False)

    emit(state, document, human)
    if not check.passed or (projects is not None and not projects.passed):
        sys.exit(EXIT_FAILED)


@secrets.command(name="fingerprint")
@secret_key_option
@secret_key_k8s_option
@kube_options
@click.pass_obj
def secrets_fingerprint(
    state: State,
    *,
    secret_key_file: str | None,
    secret_key_k8s: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
) -> None:
    """Print the key's fingerprint (the last word): it names the key, reveals nothing of it."""
    with handle_errors(state):
        key = k8s_key(secret_key_k8s, secret_key_file, kubeconfig, kube_context)
        fp = key_fingerprint(secret_key=key, secret_key_file=secret_key_file)
    emit(
        state,
        {"fingerprint": fp},
        lambda: out_console.print(f"application key fingerprint: {fp}", highlight=False),
    )


@secrets.command(name="rotate")
@db_option
@secret_key_option
@click.option(
    "--new-secret-key-file",
    type=click.Path(dir_okay=False),
    required=True,
    help="The new application key (escrow it first: 'gocdbackup secrets escrow').",
)
@click.option("--dry-run", is_flag=True, help="Count what would be re-sealed; change nothing.")
@click.option(
    "--confirm",
    metavar="NEW_FINGERPRINT",
    help="Repeat the new key's fingerprint (a run without it is a dry run and prints it).",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    default=500,
    show_default=True,
    help="Values re-sealed per transaction.",
)
@click.pass_obj
def secrets_rotate(
    state: State,
    *,
    db: str,
    pg_bindir: str | None,
    secret_key_file: str | None,
    new_secret_key_file: str,
    dry_run: bool,
    confirm: str | None,
    batch: int,
) -> None:
    """Re-seal every encrypted value from the old key to the new one, batch by batch; run it
    again to finish an interrupted rotation."""
    with handle_errors(state), progress_bar(state) as bar:
        report = rotate_key(
            db,
            secret_key_file=secret_key_file,
            new_secret_key_file=new_secret_key_file,
            dry_run=dry_run or confirm is None,
            confirm=confirm,
            batch=batch,
            progress=bar if bar.enabled else None,
            pg_bindir=pg_bindir,
        )
    emit(state, report.summary(), lambda: out_console.print(report.describe(), highlight=False))
    if report.dry_run:
        if report.to_reseal:
            apply = command_line(
                state.argv,
                drop=("--confirm",),
                drop_flags=("--dry-run",),
                add=("--confirm", report.new_fingerprint),
            )
            next_steps(state, [(f"{report.to_reseal:,} value(s) to re-seal; to do it", apply)])
        return
    if not report.complete:
        sys.exit(EXIT_FAILED)


@secrets.command(name="k8s-restore")
@click.argument("backup_id")
@repo_options
@click.option(
    "--secrets-namespace",
    required=True,
    metavar="NS",
    help="Write the backup's project Secrets into this namespace.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be created or replaced.")
@click.option(
    "--confirm",
    metavar="ID",
    help="Repeat the backup id (a run without it is a dry run and prints the command).",
)
@kube_options
@click.pass_obj
def secrets_k8s_restore(
    state: State,
    *,
    backup_id: str,
    repo: str,
    password_file: str | None,
    secrets_namespace: str,
    dry_run: bool,
    confirm: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
) -> None:
    """Write a backup's project Secrets (gocdnext's Kubernetes secrets backend) back: each
    missing one created, each changed one replaced; others are never touched."""
    with handle_errors(state), progress_bar(state) as bar:
        gb = open_repo(state, repo, password_file, bar)
        store = project_store(secrets_namespace, kubeconfig, kube_context)
        assert store is not None  # the namespace is required
        result = gb.restore_project_secrets(
            backup_id, store, dry_run=dry_run or confirm is None, confirm=confirm
        )
    emit(state, result.summary(), lambda: out_console.print(result.describe(), highlight=False))
    if result.dry_run and (result.created or result.replaced):
        apply = command_line(
            state.argv, drop=("--confirm",), drop_flags=("--dry-run",), add=("--confirm", backup_id)
        )
        next_steps(state, [("to write them", apply)])
