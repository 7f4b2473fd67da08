"""``gocdbackup orphans scan|diff``: compare gocdnext's database with its artefact store, and
two such reports.  The ``orphans`` group also holds the cleanup commands of
:mod:`gocdbackup.cli.cleanup` (``clean``, ``undo``, ``list``, ``purge``), added where the
command tree is put together (:mod:`gocdbackup.cli.app`)."""

from __future__ import annotations

import click
from rich.table import Column, Table

from gocdbackup import load_report, save_report, write_report_csv
from gocdbackup.cli.common import (
    JsonGroup,
    State,
    carried,
    command_line,
    emit,
    err_console,
    handle_errors,
    next_steps,
    out_console,
    progress_bar,
)
from gocdbackup.cli.options import (
    db_option,
    grace_option,
    open_reconciler,
    store_option,
    to_duration,
    to_percent,
)
from gocdbackup.errors import ScanInterrupted
from gocdbackup.model.cleanup import NEVER, cleanable_objects
from gocdbackup.model.orphan_report import OrphanReport
from gocdbackup.model.orphans import OrphanClass
from gocdbackup.model.render import human_bytes


@click.group(cls=JsonGroup)
def orphans() -> None:
    """Compare gocdnext's database with its artefact store; clean up safely, with undo."""


def _print_report(report: OrphanReport) -> None:
    table = Table(
        Column("class", no_wrap=True),
        "side",
        Column("keys", justify="right"),
        Column("bytes", justify="right"),
        box=None,
    )
    for c in OrphanClass:
        n = report.counts.get(c.value, 0)
        style = "" if c in NEVER or not n else "[yellow]"  # what a cleanup may act on
        table.add_row(
            f"{style}{c.value}", c.side, f"{n:,}", human_bytes(report.bytes.get(c.value, 0))
        )
    out_console.print(table)
    state = "complete" if report.complete else f"INCOMPLETE (stopped at {report.cursor!r})"
    held = "" if report.store_objects is None else f", {report.store_objects:,} object(s) listed"
    out_console.print(
        f"report {report.id}: {state}{held}; {report.source.store} against "
        f"{report.source.database}",
        highlight=False,
        markup=False,
    )
    if report.listed_at is not None:
        out_console.print(
            f"objects listed from the inventory {report.listing}, taken "
            f"{report.listed_at:%Y-%m-%d %H:%M} UTC: objects written later without a row are "
            "not in it (a later inventory, or a scan without --listing, judges them)",
            highlight=False,
            markup=False,
        )
    if report.store_empty:
        err_console.print(
            f"[bold yellow]warning:[/] the artefact store {report.source.store} holds NO "
            "objects at all: every ready row is missing its object. If the bucket was lost, "
            "the lost-bucket runbook writes the objects back from backups; if not, check the "
            "URL.",
            highlight=False,
        )


@orphans.command(name="scan")
@db_option
@store_option()
@grace_option
@click.option(
    "--verify-content",
    default="0",
    metavar="PERCENT",
    help="Also read this share of the objects and compare their SHA-256.",
)
@click.option(
    "--rate-limit",
    type=float,
    metavar="REQ_PER_S",
    help="At most this many store requests per second.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    metavar="REPORT.jsonl",
    help="Write the full report here, as JSON Lines (also when the scan is interrupted).",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write the report's rows as CSV.",
)
@click.option(
    "--resume",
    type=click.Path(exists=True, dir_okay=False),
    metavar="REPORT.jsonl",
    help="Continue an interrupted scan from its report.",
)
@click.option(
    "--shards",
    type=click.IntRange(1, 1024),
    default=1,
    show_default=True,
    help="Scan this many key ranges in as many worker processes (each lists only its range) "
    "and merge their reports into one.",
)
@click.option(
    "--listing",
    metavar="MANIFEST_URL",
    help="Read the bucket's objects from this inventory (an S3 Inventory manifest.json or a "
    "GCS inventory report manifest) instead of listing the bucket.",
)
@click.pass_obj
def orphans_scan(
    state: State,
    *,
    db: str,
    pg_bindir: str | None,
    artifacts: str,
    grace: str,
    verify_content: str,
    rate_limit: float | None,
    out: str | None,
    csv_path: str | None,
    resume: str | None,
    listing: str | None,
    shards: int,
) -> None:
    """Classify every referenced key and every stored object (read-only)."""
    if shards > 1 and resume:
        raise click.UsageError("--resume continues a scan of one process: drop --shards")
    with handle_errors(state), progress_bar(state) as bar:
        rec = open_reconciler(state, db, artifacts, bar, pg_bindir=pg_bindir)
        try:
            report = rec.scan(
                grace=to_duration(grace),
                verify_content=to_percent(verify_content),
                rate_limit=rate_limit,
                resume=load_report(resume) if resume else None,
                listing=listing,
                shards=shards,
            )
        except ScanInterrupted as exc:
            if out and isinstance(exc.report, OrphanReport):
                save_report(exc.report, out)
                again = command_line(state.argv, drop=("--resume",), add=("--resume", out))
                raise ScanInterrupted(f"{exc}; resume with: {again}", exc.report) from exc
            raise
        if out:
            save_report(report, out)
        if csv_path:
            write_report_csv(report, csv_path)
    emit(state, report.summary(), lambda: _print_report(report))
    to_clean = cleanable_objects(report)
    if out and to_clean:
        next_steps(
            state,
            [
                (
                    f"{to_clean:,} object(s) without rows; see what a cleanup would do",
                    _clean_command(state, out, ("--dry-run",)),
                )
            ],
        )


def _clean_command(state: State, report_path: str, extra: tuple[str, ...]) -> str:
    words = carried(
        state.argv, "--db", "--pg-bindir", "--artifacts", "--artifacts-option", "--quarantine"
    )
    return command_line([], add=("orphans", "clean", "--report", report_path, *words, *extra))


@orphans.command(name="diff")
@click.argument("older", type=click.Path(exists=True, dir_okay=False))
@click.argument("newer", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def orphans_diff(state: State, *, older: str, newer: str) -> None:
    """What changed between two reports of the same database and store."""
    with handle_errors(state):
        old, new = load_report(older), load_report(newer)
        delta = new.count_changes(old)
        changes = [{"key": k, "before": a, "after": b} for k, a, b in new.diff(old)]
    doc = {"older": old.id, "newer": new.id, "count_changes": delta, "changes": changes}

    def human() -> None:
        for c in changes:
            out_console.print(
                f"{c['key']}: {c['before'] or 'ok/absent'} -> {c['after'] or 'ok/absent'}",
                highlight=False,
                markup=False,
            )
        moved = ", ".join(f"{cls} {n:+,}" for cls, n in delta.items()) or "no class changed"
        out_console.print(f"{len(changes):,} key(s) changed; {moved}", highlight=False)

    emit(state, doc, human)
