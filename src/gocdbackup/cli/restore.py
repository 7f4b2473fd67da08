"""``gocdbackup restore``: a backup into a staging database, checked, then in place of the
target (and, if asked, its artefact objects and project Secrets back where they were)."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from datetime import datetime

import click

from gocdbackup import restore_physical
from gocdbackup.cli.common import (
    EXIT_FAILED,
    JsonCommand,
    State,
    carried,
    command_line,
    emit,
    err_console,
    handle_errors,
    out_console,
    progress_bar,
)
from gocdbackup.cli.options import (
    artifact_options,
    database_of,
    db_or_release_options,
    k8s_key,
    kube_options,
    open_repo,
    project_store,
    repo_options,
    secret_key_k8s_option,
    transfers_option,
)


@click.command(cls=JsonCommand)
@click.argument("backup_id")
@repo_options
@db_or_release_options
@click.option("--replace", is_flag=True, help="Replace the target database if it exists.")
@click.option("--confirm", required=True, metavar="ID", help="Repeat the backup id.")
@click.option(
    "--artifacts",
    envvar="GOCDBACKUP_ARTIFACTS",
    metavar="STORE_URL",
    help="Also write the backup's artefact objects back into this store "
    "(default: $GOCDBACKUP_ARTIFACTS).",
)
@click.option(
    "--store-from-versions",
    is_flag=True,
    help="With --artifacts on a versioned bucket: make the versions the backup recorded "
    "current again, server-side, instead of copying the objects from the repository (those "
    "whose version is gone still come from the repository).",
)
@click.option(
    "--secret-key-file",
    type=click.Path(dir_okay=False),
    help="gocdnext's application key: refused if the backup was taken with another key, and "
    "every sealed value of the restored database is checked (default: $GOCDNEXT_SECRET_KEY).",
)
@secret_key_k8s_option
@click.option(
    "--secrets-namespace",
    metavar="NS",
    help="Also write the backup's project Secrets (gocdnext's Kubernetes secrets backend) "
    "into this namespace, created or replaced, once the database is restored.",
)
@kube_options
@artifact_options
@transfers_option
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 256),
    default=None,
    help="Tables loaded, and indexes and constraints built, at a time (default: the number "
    "of cores; 1 streams the dump into one pg_restore).",
)
@click.option(
    "--pgdata",
    type=click.Path(file_okay=False),
    help="A physical backup: lay it down into this new data directory and recover it "
    "(instead of --db).",
)
@click.option(
    "--target-time",
    metavar="TIME",
    help="A physical backup: recover to this time (ISO 8601 with its UTC offset, e.g. "
    "2026-11-30T14:03:27+00:00) into --pgdata, or with --db through a throwaway server into "
    "that database; default: the end of the WAL archive.",
)
@click.option(
    "--target-lsn", metavar="LSN", help="A physical backup: recover to this WAL position."
)
@click.pass_obj
def restore(
    state: State,
    *,
    backup_id: str,
    repo: str,
    password_file: str | None,
    db: str | None,
    pg_bindir: str | None,
    k8s_namespace: str | None,
    k8s_release: str | None,
    k8s_pod: str | None,
    replace: bool,
    confirm: str,
    artifacts: str | None,
    store_from_versions: bool,
    secret_key_file: str | None,
    secret_key_k8s: str | None,
    secrets_namespace: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
    transfers: int,
    jobs: int | None,
    pgdata: str | None,
    target_time: str | None,
    target_lsn: str | None,
) -> None:
    """Restore a backup into the database --db names (created if absent), or a physical
    backup into a new data directory (--pgdata), recovered to --target-time or --target-lsn."""
    if store_from_versions and not artifacts:
        raise click.UsageError("--store-from-versions needs --artifacts (the versioned bucket)")
    if pgdata is not None or target_time or target_lsn:
        if pgdata is not None and db is not None:
            raise click.UsageError("give --pgdata (a data directory) or --db, not both")
        if pgdata is None and db is None:
            raise click.UsageError("--target-time and --target-lsn need --pgdata or --db")
        _restore_physical(
            state,
            db=db,
            replace=replace,
            backup_id=backup_id,
            repo=repo,
            password_file=password_file,
            pg_bindir=pg_bindir,
            pgdata=pgdata,
            confirm=confirm,
            target_time=target_time,
            target_lsn=target_lsn,
        )
        return
    with handle_errors(state), progress_bar(state) as bar, ExitStack() as stack:
        key = k8s_key(secret_key_k8s, secret_key_file, kubeconfig, kube_context)
        gb = open_repo(state, repo, password_file, bar, pg_bindir=pg_bindir, transfers=transfers)
        database = database_of(
            stack,
            db=db,
            k8s_namespace=k8s_namespace,
            k8s_release=k8s_release,
            k8s_pod=k8s_pod,
            kubeconfig=kubeconfig,
            kube_context=kube_context,
        )
        report = gb.restore(
            backup_id,
            database,
            confirm=confirm,
            replace=replace,
            artifacts=artifacts,
            store_from_versions=store_from_versions,
            secret_key=key,
            secret_key_file=secret_key_file,
            project_secrets=project_store(secrets_namespace, kubeconfig, kube_context),
            jobs=jobs,
        )
        held = gb.get_backup(backup_id).kube_secrets if secrets_namespace is None else None

    def human() -> None:
        out_console.print(
            f"restored {report.backup_id} into {report.database!r}: {report.tables_checked} "
            f"tables and {report.rows_checked:,} rows match the backup, "
            + (
                "no goose version (as in the backup)"
                if report.goose_version is None
                else f"goose {report.goose_version}"
            ),
            highlight=False,
        )
        if report.phases:
            out_console.print(
                f"loaded table by table, {report.jobs} at a time: "
                + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report.phases),
                highlight=False,
            )
        if report.secrets is not None:
            out_console.print(report.secrets.verdict(), highlight=False, markup=False)
        if report.kube_secrets is not None:
            out_console.print(report.kube_secrets.describe(), highlight=False, markup=False)

    emit(state, report.summary(), human)
    if held is not None and not state.as_json:
        words = carried(
            state.argv, "--repo", "--password-file", "--storage-option", "--kubeconfig", "--context"
        )
        write = command_line(
            [],
            add=(
                "secrets",
                "k8s-restore",
                backup_id,
                *words,
                "--secrets-namespace",
                held.namespace,
                "--dry-run",
            ),
        )
        err_console.print(
            f"note: the backup also holds {held.describe()} (not written: no "
            "--secrets-namespace); to see what writing them back would do:",
            highlight=False,
            markup=False,
        )
        err_console.print(f"  {write}", highlight=False, markup=False, soft_wrap=True)
    if report.secrets is not None and not report.secrets.passed:
        sys.exit(EXIT_FAILED)


def _restore_physical(
    state: State,
    *,
    db: str | None,
    replace: bool,
    backup_id: str,
    repo: str,
    password_file: str | None,
    pg_bindir: str | None,
    pgdata: str | None,
    confirm: str,
    target_time: str | None,
    target_lsn: str | None,
) -> None:
    try:
        when = None if target_time is None else datetime.fromisoformat(target_time)
    except ValueError:
        raise click.BadParameter(
            f"{target_time!r} is not an ISO 8601 time", param_hint="--target-time"
        ) from None
    with handle_errors(state), progress_bar(state) as bar:
        gb = open_repo(state, repo, password_file, bar)
        report = restore_physical(
            gb,
            backup_id,
            pgdata,
            confirm=confirm,
            target_time=when,
            target_lsn=target_lsn,
            bindir=pg_bindir,
            db=db,
            replace=replace,
        )

    def human() -> None:
        reached = report.recovered_to.isoformat() if report.recovered_to else "no transaction"
        where = report.pgdata or f"a throwaway server, then database {report.database!r}"
        out_console.print(
            f"recovered {report.backup_id} into {where} to {report.target}: the last "
            f"transaction replayed committed at {reached} (LSN {report.lsn}, timeline "
            f"{report.timeline}); {report.tables_checked} tables, {report.rows_checked:,} rows, "
            + (
                "no goose version"
                if report.goose_version is None
                else f"goose {report.goose_version}"
            ),
            highlight=False,
        )
        if report.logical_backup is not None:
            out_console.print(
                f"restored through logical backup {report.logical_backup} (kept in the repository)",
                highlight=False,
            )
        else:
            out_console.print(
                f"the data directory is stopped and ready: pg_ctl -D {report.pgdata} start",
                highlight=False,
            )

    emit(state, report.summary(), human)
