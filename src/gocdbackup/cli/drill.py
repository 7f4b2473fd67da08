"""``gocdbackup drill``: a backup restored into a scratch database and store, checked the way
gocdnext's guide checks a restore by hand, and torn down; the report, and exit 1 when a check
fails."""

from __future__ import annotations

import sys

import click

from gocdbackup import run_drill
from gocdbackup.cli.common import (
    EXIT_FAILED,
    JsonCommand,
    State,
    emit,
    handle_errors,
    out_console,
    progress_bar,
)
from gocdbackup.cli.options import open_repo, repo_options, to_percent
from gocdbackup.model.drill import DrillReport


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
@click.pass_obj
def drill(
    state: State,
    *,
    backup_id: str | None,
    repo: str,
    password_file: str | None,
    scratch_db: str | None,
    scratch_store: str | None,
    artifacts_sample: str,
    secret_key_file: str | None,
    run_id: str | None,
) -> None:
    """Restore a backup (default: the newest) into scratch, check it as gocdnext's guide does
    by hand (schema, rows and foreign keys, logs, artefacts, the key) and tear it down."""
    sample = _sample(artifacts_sample)
    with handle_errors(state), progress_bar(state) as bar:
        gb = open_repo(state, repo, password_file, bar)
        report = run_drill(
            gb,
            backup_id,
            scratch_db=scratch_db,
            scratch_store=scratch_store,
            sample=sample,
            run_id=run_id,
            secret_key_file=secret_key_file,
            raise_on_failure=False,
        )
    emit(state, report.summary(), lambda: _print(report))
    if not report.ok:
        sys.exit(EXIT_FAILED)
