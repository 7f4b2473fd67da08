"""``gocdbackup drill``: a backup restored into a scratch database and store, checked the way
gocdnext's guide checks a restore by hand, and torn down; the report, and exit 1 when a check
fails."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, TypeVar

import click

from gocdbackup import kube_postgres, metrics, run_drill
from gocdbackup import status as protection
from gocdbackup.cli.common import (
    EXIT_FAILED,
    JsonCommand,
    State,
    emit,
    handle_errors,
    out_console,
    progress_bar,
)
from gocdbackup.cli.options import (
    k8s_release_option,
    kube_options,
    open_repo,
    repo_options,
    to_duration,
    to_percent,
)
from gocdbackup.drivers.postgres import PostgresServer
from gocdbackup.model.drill import DrillReport
from gocdbackup.model.status import Thresholds

F = TypeVar("F", bound=Callable[..., Any])


def _sample(value: str) -> int | float:
    """``N`` objects, or ``P%`` of them."""
    if value.strip().endswith("%"):
        return to_percent(value) / 100.0
    try:
        count = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give a count (20) or a share (10%)") from None
    if count < 0:
        raise click.BadParameter(f"{value!r} is negative")
    return count


def _print(report: DrillReport) -> None:
    for check in report.checks:
        style = {"ok": "green", "FAILED": "red"}.get(check.verdict, "yellow")
        out_console.print(f"[{style}]{check.verdict:>7}[/] {check.name}: ", end="")
        out_console.print(check.evidence, highlight=False, markup=False)
    steps = ", ".join(f"{s.name} {s.seconds:.1f} s" for s in report.steps)
    out_console.print(f"steps: {steps}", highlight=False)
    out_console.print(report.verdict(), highlight=False, markup=False)


def metrics_option(fn: F) -> F:
    return click.option(
        "--metrics-file",
        type=click.Path(dir_okay=False),
        help="Also write Prometheus metrics (text format, for node-exporter's textfile "
        "collector) to this file.",
    )(fn)


@click.command(cls=JsonCommand)
@click.argument("backup_id", required=False)
@repo_options
@click.option(
    "--scratch-db",
    metavar="DSN",
    help="A PostgreSQL server to restore into (a database of its own, dropped afterwards); "
    "default: an embedded PostgreSQL started for the drill.",
)
@click.option(
    "--scratch-k8s-namespace",
    metavar="NS",
    help="Instead of --scratch-db: restore into the bundled PostgreSQL of a gocdnext release "
    "in this (scratch) namespace, through the Kubernetes API.",
)
@k8s_release_option
@kube_options
@click.option(
    "--scratch-store",
    metavar="URL",
    help="Where the sampled objects go (default: a temporary directory, removed afterwards).",
)
@click.option(
    "--artifacts-sample",
    default="20",
    show_default=True,
    metavar="N|PERCENT",
    help="How many artefact objects to restore and check (a count, or a share like 10%).",
)
@click.option(
    "--secret-key-file",
    type=click.Path(dir_okay=False),
    help="gocdnext's application key: its fingerprint is compared with the backup's and every "
    "sealed value is checked (default: $GOCDNEXT_SECRET_KEY).",
)
@click.option("--run", "run_id", metavar="RUN_ID", help="The run whose logs are read back.")
@metrics_option
@click.pass_obj
def drill(
    state: State,
    *,
    backup_id: str | None,
    repo: str,
    password_file: str | None,
    scratch_db: str | None,
    scratch_k8s_namespace: str | None,
    k8s_release: str | None,
    kubeconfig: str | None,
    kube_context: str | None,
    scratch_store: str | None,
    artifacts_sample: str,
    secret_key_file: str | None,
    run_id: str | None,
    metrics_file: str | None,
) -> None:
    """Restore a backup (default: the newest) into scratch, check it as gocdnext's guide does
    by hand (schema, rows and foreign keys, the dashboard's reads, recent runs, logs,
    artefacts, the key) and tear it down."""
    sample = _sample(artifacts_sample)
    if scratch_db and scratch_k8s_namespace:
        raise click.UsageError("give --scratch-db or --scratch-k8s-namespace, not both")
    with handle_errors(state), progress_bar(state) as bar, ExitStack() as stack:
        gb = open_repo(state, repo, password_file, bar)
        scratch: str | PostgresServer | None = scratch_db
        if scratch_k8s_namespace:
            scratch = stack.enter_context(
                kube_postgres(
                    scratch_k8s_namespace,
                    k8s_release,
                    kubeconfig=kubeconfig,
                    context=kube_context,
                )
            )
        report = run_drill(
            gb,
            backup_id,
            scratch_db=scratch,
            scratch_store=scratch_store,
            sample=sample,
            run_id=run_id,
            secret_key_file=secret_key_file,
            raise_on_failure=False,
        )
        if metrics_file:
            metrics(gb, metrics_file)
    emit(state, report.summary(), lambda: _print(report))
    if not report.ok:
        sys.exit(EXIT_FAILED)


@click.command(cls=JsonCommand)
@repo_options
@click.option(
    "--max-backup-age",
    default="26h",
    show_default=True,
    metavar="DURATION",
    help="The newest backup may be this old.",
)
@click.option(
    "--max-verify-age",
    default="8d",
    show_default=True,
    metavar="DURATION",
    help="The last successful verification may be this old.",
)
@click.option(
    "--max-drill-age",
    default="92d",
    show_default=True,
    metavar="DURATION",
    help="The last successful restore drill may be this old.",
)
@metrics_option
@click.pass_obj
def status(
    state: State,
    *,
    repo: str,
    password_file: str | None,
    max_backup_age: str,
    max_verify_age: str,
    max_drill_age: str,
    metrics_file: str | None,
) -> None:
    """How current the protection is: the newest backup, the last successful verification
    and drill, each against its limit; exits 1 when any is overdue."""
    limits = Thresholds(
        backup=to_duration(max_backup_age),
        verify=to_duration(max_verify_age),
        drill=to_duration(max_drill_age),
    )
    with handle_errors(state):
        gb = open_repo(state, repo, password_file)
        report = metrics(gb, metrics_file, thresholds=limits) if metrics_file else None
        report = report or protection(gb, thresholds=limits)

    def human() -> None:
        for row in report.rows():
            style = "red" if row["overdue"] else "green"
            out_console.print(
                f"[{style}]{'OVERDUE' if row['overdue'] else 'ok':>7}[/] {row['what']}: "
                f"{'never' if row['last'] is None else row['age'] + ' ago'} "
                f"(limit {row['limit']}) {row['detail']}".rstrip(),
                highlight=False,
            )
        out_console.print(report.verdict(), highlight=False, markup=False)

    emit(state, report.summary(), human)
    if not report.ok:
        sys.exit(EXIT_FAILED)
