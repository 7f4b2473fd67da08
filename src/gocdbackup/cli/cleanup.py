"""``gocdbackup orphans clean|undo|list|purge``: move the objects without rows a report found
into quarantine (or delete them), put them back, and purge the quarantine for good.  These
commands belong to the ``orphans`` group of :mod:`gocdbackup.cli.orphans`."""

from __future__ import annotations

import sys

import click
from rich.table import Column, Table

from gocdbackup import load_report
from gocdbackup.cli.common import (
    EXIT_INCOMPLETE,
    JsonCommand,
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
    open_reconciler,
    quarantine_option,
    store_option,
    to_duration,
    transfers_option,
)
from gocdbackup.errors import ConfigError, IntegrityError
from gocdbackup.model.cleanup import CleanupResult, left_after_cleanup
from gocdbackup.model.durations import format_duration
from gocdbackup.model.orphan_report import OrphanReport
from gocdbackup.model.render import human_bytes


def _classes(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


@click.command(cls=JsonCommand, name="clean")
@click.option(
    "--report",
    "report_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    metavar="REPORT.jsonl",
    help="A report 'orphans scan --out' wrote.",
)
@db_option
@store_option(required=False)
@quarantine_option
@click.option(
    "--classes", metavar="A,B", help="Classes to act on (default: orphan_object,partial_upload)."
)
@click.option(
    "--mode", type=click.Choice(["quarantine", "delete"]), default="quarantine", show_default=True
)
@click.option("--dry-run", is_flag=True, help="Re-check every key and say what would happen.")
@click.option(
    "--confirm",
    metavar="PLAN_ID",
    help="Repeat the plan id the dry run (or a run without it) showed.",
)
@click.option(
    "--max-age",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="Refuse a report older than this.",
)
@transfers_option
@click.pass_obj
def orphans_clean(
    state: State,
    *,
    report_path: str,
    db: str,
    pg_bindir: str | None,
    artifacts: str | None,
    quarantine: str | None,
    classes: str | None,
    mode: str,
    dry_run: bool,
    confirm: str | None,
    max_age: str,
    transfers: int,
) -> None:
    """Quarantine (or delete) the objects without rows a report found, re-checking each."""
    with handle_errors(state), progress_bar(state) as bar:
        report = load_report(report_path)
        rec = open_reconciler(
            state,
            db,
            artifacts or report.source.store,
            bar,
            pg_bindir=pg_bindir,
            quarantine=quarantine,
            transfers=transfers,
        )
        plan = rec.plan(report, _classes(classes))
        if not dry_run and confirm is None:
            apply = command_line(state.argv, drop=("--confirm",), add=("--confirm", plan.id))
            raise ConfigError(
                f"a cleanup needs --confirm {plan.id} (the plan for {len(plan.items):,} key(s) "
                f"of report {report.id}); see what it would do first with --dry-run, then run: "
                f"{apply}"
            )
        result = rec.clean(
            plan,
            confirm=plan.id if dry_run else str(confirm),
            mode=mode,
            dry_run=dry_run,
            max_report_age=to_duration(max_age),
        )
    doc = {**result.summary(), "report_id": report.id, "complete": True}
    left = _clean_left(state, report, result, plan.id, artifacts, dry_run=dry_run)
    doc["complete"] = not left
    doc["left"] = left_document(left)
    emit(state, doc, lambda: _print_clean(state, result, artifacts or report.source.store))
    next_steps(state, left)
    if left and not dry_run:
        sys.exit(EXIT_INCOMPLETE)


def _print_clean(state: State, result: CleanupResult, store: str) -> None:
    out_console.print(result.describe(), highlight=False, markup=False)
    if result.mode == "quarantine" and any(result.done.values()):
        words = carried(state.argv, "--artifacts-option", "--quarantine")
        undo = command_line([], add=("orphans", "undo", result.id, "--artifacts", store, *words))
        out_console.print(f"undo with: {undo}", highlight=False, markup=False, soft_wrap=True)


def _clean_left(
    state: State,
    report: OrphanReport,
    result: CleanupResult,
    plan_id: str,
    artifacts: str | None,
    *,
    dry_run: bool,
) -> Left:
    """A dry run: the command that does it; a cleanup: the scan that judges what it could not
    (:func:`~gocdbackup.model.cleanup.left_after_cleanup`)."""
    if dry_run:
        if not result.acted_on:
            return []
        apply = command_line(
            state.argv, drop=("--confirm",), drop_flags=("--dry-run",), add=("--confirm", plan_id)
        )
        return [(f"{result.acted_on:,} object(s) would be moved; to do it", apply)]
    left = left_after_cleanup(report, result)
    if left.complete:
        return []
    store = artifacts or report.source.store
    words = carried(state.argv, "--db", "--pg-bindir", "--artifacts-option")
    scan = command_line(
        [], add=("orphans", "scan", *words, "--artifacts", store, "--out", _next_report(report))
    )
    what = []
    if left.changed:
        what.append(f"{left.changed:,} object(s) changed or grew young again since the scan")
    if left.unjudged:
        what.append(
            f"{left.unjudged:,} object(s) without rows were younger than the grace window "
            f"({format_duration(left.grace)}) at the scan"
        )
    text = "; ".join(what) + ": scan again (after the grace window), then clean with the new report"
    return [(text, scan)]


def _next_report(report: OrphanReport) -> str:
    return f"orphans-{report.scanned_at:%Y%m%d}-next.jsonl"


@click.command(cls=JsonCommand, name="undo")
@click.argument("cleanup_id")
@store_option()
@quarantine_option
@click.pass_obj
def orphans_undo(state: State, *, cleanup_id: str, artifacts: str, quarantine: str | None) -> None:
    """Put back every object a quarantine cleanup moved, byte for byte."""
    with handle_errors(state), progress_bar(state) as bar:
        rec = open_reconciler(state, None, artifacts, bar, quarantine=quarantine)
        result = rec.undo(cleanup_id)
        if not result.complete:
            raise IntegrityError(
                f"undo of {cleanup_id}: {result.restored} restored, {len(result.conflicts)} "
                f"key(s) written again since the cleanup (their quarantined copies are kept), "
                f"{len(result.lost)} without a quarantined copy; the records are kept",
                problems=[f"{k}: written again" for k in result.conflicts]
                + [f"{k}: no quarantined copy" for k in result.lost],
            )
    emit(
        state,
        result.summary(),
        lambda: out_console.print(
            f"undo of {cleanup_id}: put back {result.restored:,} object(s)"
            + (
                f"; {result.already_there:,} already held the same bytes"
                if result.already_there
                else ""
            ),
            highlight=False,
            markup=False,
        ),
    )


@click.command(cls=JsonCommand, name="list")
@store_option()
@quarantine_option
@click.pass_obj
def orphans_list(state: State, *, artifacts: str, quarantine: str | None) -> None:
    """The cleanups whose quarantined objects are kept."""
    with handle_errors(state):
        found = open_reconciler(state, None, artifacts, None, quarantine=quarantine).cleanups()

    def human() -> None:
        if not found:
            out_console.print("no quarantined cleanups", highlight=False)
            return
        table = Table(
            Column("cleanup", no_wrap=True),
            "mode",
            Column("created (UTC)", no_wrap=True),
            Column("objects", justify="right"),
            Column("size", justify="right"),
            box=None,
        )
        for c in found:
            table.add_row(
                str(c["id"]),
                str(c["mode"]),
                str(c["created_at"])[:16].replace("T", " "),
                f"{c['quarantined_objects']:,}",
                human_bytes(int(c["quarantined_bytes"])),
            )
        out_console.print(table)

    emit(state, found, human)


@click.command(cls=JsonCommand, name="purge")
@store_option()
@quarantine_option
@click.option(
    "--older-than",
    required=True,
    metavar="DURATION",
    help="Purge cleanups older than this, e.g. 30d.",
)
@click.option("--confirm", metavar="PURGE_ID", help="The id a run without --confirm showed.")
@click.pass_obj
def orphans_purge(
    state: State,
    *,
    artifacts: str,
    quarantine: str | None,
    older_than: str,
    confirm: str | None,
) -> None:
    """Delete quarantined objects for good (without --confirm: show what would go)."""
    with handle_errors(state):
        rec = open_reconciler(state, None, artifacts, None, quarantine=quarantine)
        summary = rec.purge_quarantine(to_duration(older_than), confirm=confirm)
    cleanups, size = len(summary["cleanups"]), human_bytes(int(summary["bytes"]))

    def human() -> None:
        verb = "purged" if summary["applied"] else "would purge"
        out_console.print(
            f"{verb} {summary['objects']:,} quarantined object(s) ({size}) of {cleanups} "
            f"cleanup(s) older than {older_than}",
            highlight=False,
        )

    emit(state, summary, human)
    if not summary["applied"] and cleanups:
        apply = command_line(state.argv, drop=("--confirm",), add=("--confirm", summary["id"]))
        next_steps(state, [("to purge them for good", apply)])
