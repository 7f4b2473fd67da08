"""``gocdbackup runbook lost-bucket|lost-database``: gocdnext's disaster runbooks as commands,
each exiting 3 with the commands that finish what is left."""

from __future__ import annotations

import os
import sys

import click

from gocdbackup.cli.common import (
    EXIT_INCOMPLETE,
    JsonGroup,
    Left,
    State,
    carried,
    command_line,
    emit,
    handle_errors,
    left_document,
    next_steps,
    out_console,
    progress_bar,
)
from gocdbackup.cli.options import (
    db_option,
    grace_option,
    open_reconciler,
    open_repo,
    repo_options,
    store_option,
    to_duration,
)
from gocdbackup.model.runbook import RunbookReport


def _print_runbook(report: RunbookReport) -> None:
    for n, step in enumerate(report.steps, 1):
        out_console.print(f"{n}. {step.name}: {step.text}", highlight=False, markup=False)
    out_console.print(
        f"runbook {report.runbook}: "
        + ("complete: the store and the database agree" if report.complete else "INCOMPLETE"),
        highlight=False,
        markup=False,
    )


def _runbook_left(state: State, report: RunbookReport) -> Left:
    """Each outstanding item with the command that finishes it."""
    left: Left = []
    for item in report.outstanding:
        text = f"{item.count:,} {item.reason}"
        if item.kind == "confirm" and item.confirm_id:
            command: str | None = command_line(
                state.argv, drop=("--confirm",), add=("--confirm", item.confirm_id)
            )
        elif item.kind == "held_back":
            when = (
                "" if item.retry_after is None else f" after {item.retry_after:%Y-%m-%d %H:%M} UTC"
            )
            text += f"; run again{when}"
            command = command_line(state.argv, drop=("--confirm",))
        else:
            command = _lost_bucket_command(state)
            if command is None:
                text += " (give it the repository that holds the backups: --repo URL)"
        left.append((text, command))
    return left


def _lost_bucket_command(state: State) -> str | None:
    repo = carried(state.argv, "--repo", "--password-file", "--storage-option")
    if not repo and not os.environ.get("GOCDBACKUP_REPO"):
        return None
    words = carried(state.argv, "--db", "--pg-bindir", "--artifacts", "--artifacts-option")
    return command_line([], add=("runbook", "lost-bucket", *words, *repo))


def _finish_runbook(state: State, report: RunbookReport) -> None:
    left = _runbook_left(state, report)
    doc = {**report.summary(), "left": left_document(left)}
    emit(state, doc, lambda: _print_runbook(report))
    next_steps(state, left)
    if not report.complete:
        sys.exit(EXIT_INCOMPLETE)


@click.group(cls=JsonGroup)
def runbook() -> None:
    """gocdnext's disaster runbooks as commands."""


@runbook.command(name="lost-bucket")
@db_option
@store_option()
@repo_options
@grace_option
@click.option("--confirm", metavar="ID", help="Retire the rows no backup can recover.")
@click.option(
    "--allow-empty-store",
    is_flag=True,
    help="Retire rows even though the store holds no object at all and no backup could "
    "give any back (the bucket is empty on purpose, not a mistyped URL).",
)
@click.pass_obj
def runbook_lost_bucket(
    state: State,
    *,
    db: str,
    pg_bindir: str | None,
    artifacts: str,
    repo: str,
    password_file: str | None,
    grace: str,
    confirm: str | None,
    allow_empty_store: bool,
) -> None:
    """Lost the bucket, kept Postgres: recover every object backups hold, then retire the rest.

    Exits 0 only when the store and the database agree afterwards; 3 when something is
    left (printed, with the command that finishes it)."""
    with handle_errors(state), progress_bar(state) as bar:
        gb = open_repo(state, repo, password_file, bar)
        rec = open_reconciler(state, db, artifacts, bar, pg_bindir=pg_bindir)
        report = rec.lost_bucket(
            gb, grace=to_duration(grace), confirm=confirm, allow_empty_store=allow_empty_store
        )
    _finish_runbook(state, report)


@runbook.command(name="lost-database")
@db_option
@store_option()
@grace_option
@click.option(
    "--mode", type=click.Choice(["quarantine", "delete"]), default="quarantine", show_default=True
)
@click.option("--confirm", metavar="ID", help="Quarantine the orphan objects the scan found.")
@click.pass_obj
def runbook_lost_database(
    state: State,
    *,
    db: str,
    pg_bindir: str | None,
    artifacts: str,
    grace: str,
    mode: str,
    confirm: str | None,
) -> None:
    """Lost Postgres, kept the bucket: after the restore, quarantine objects no row references.

    Exits 0 only when the store and the database agree afterwards; 3 when something is
    left (printed, with the command that finishes it)."""
    with handle_errors(state), progress_bar(state) as bar:
        rec = open_reconciler(state, db, artifacts, bar, pg_bindir=pg_bindir)
        report = rec.lost_database(grace=to_duration(grace), confirm=confirm, mode=mode)
    _finish_runbook(state, report)
