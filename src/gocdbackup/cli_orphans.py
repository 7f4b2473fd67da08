"""The CLI's ``orphans`` and ``runbook`` groups (registered on ``gocdbackup.cli.main``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.table import Column, Table

from gocdbackup._reconciler import Reconciler
from gocdbackup.cli import (
    State,
    _Bar,
    _duration,
    _emit,
    _errors,
    _open,
    _percent,
    _progress_enabled,
    artifact_options,
    db_option,
    out_console,
    repo_options,
    transfers_option,
)
from gocdbackup.errors import (
    ConfigError,
    ConfirmationMismatch,
    IntegrityError,
    ReportMismatch,
    ScanInterrupted,
)
from gocdbackup.model.orphan_report import OrphanReport
from gocdbackup.model.orphans import OrphanClass
from gocdbackup.model.render import human_bytes
from gocdbackup.ops.runbooks import RunbookReport

F = TypeVar("F", bound=Callable[..., Any])


def store_option(required: bool = True) -> Callable[[F], F]:
    def deco(fn: F) -> F:
        fn = artifact_options(fn)
        return click.option(
            "--artifacts",
            required=required,
            metavar="STORE_URL",
            help="gocdnext's artefact store: file:///var/lib/gocdnext/artifacts, s3://bucket, "
            "gs://bucket.",
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


def _reconciler(
    state: State,
    db: str | None,
    artifacts: str,
    bar: _Bar | None,
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
        style = "" if c in (OrphanClass.OK, OrphanClass.TOO_RECENT) or not n else "[yellow]"
        table.add_row(
            f"{style}{c.value}", c.side, f"{n:,}", human_bytes(report.bytes.get(c.value, 0))
        )
    out_console.print(table)
    state = "complete" if report.complete else f"INCOMPLETE (stopped at {report.cursor!r})"
    out_console.print(
        f"report {report.id}: {state}; {report.source.store} against {report.source.database}",
        highlight=False,
        markup=False,
    )


@click.group()
def orphans() -> None:
    """Compare gocdnext's database with its artefact store; clean up safely, with undo."""


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
    metavar="REPORT.json",
    help="Write the full report here (also when the scan is interrupted).",
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
    metavar="REPORT.json",
    help="Continue an interrupted scan from its report.",
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
) -> None:
    """Classify every referenced key and every stored object (read-only)."""
    with _errors(state), _Bar(_progress_enabled(state)) as bar:
        rec = _reconciler(state, db, artifacts, bar, pg_bindir=pg_bindir)
        try:
            report = rec.scan(
                grace=_duration(grace),
                verify_content=_percent(verify_content),
                rate_limit=rate_limit,
                resume=OrphanReport.load(resume) if resume else None,
            )
        except ScanInterrupted as exc:
            if out and isinstance(exc.report, OrphanReport):
                exc.report.save(out)
                raise ScanInterrupted(f"{exc}; resume with --resume {out}", exc.report) from exc
            raise
        if out:
            report.save(out)
        if csv_path:
            report.write_csv(csv_path)
    _emit(state, report.summary(), lambda: _print_report(report))


@orphans.command(name="diff")
@click.argument("older", type=click.Path(exists=True, dir_okay=False))
@click.argument("newer", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def orphans_diff(state: State, *, older: str, newer: str) -> None:
    """What changed between two reports of the same database and store."""
    with _errors(state):
        old, new = OrphanReport.load(older), OrphanReport.load(newer)
        if old.source != new.source:
            raise ReportMismatch(
                f"{older} and {newer} describe different databases or stores; nothing to compare"
            )
        changes = [{"key": k, "before": a, "after": b} for k, a, b in new.diff(old)]
        delta = {
            c: new.counts.get(c, 0) - old.counts.get(c, 0)
            for c in new.counts
            if new.counts.get(c, 0) != old.counts.get(c, 0)
        }
    doc = {"older": old.id, "newer": new.id, "count_changes": delta, "changes": changes}

    def human() -> None:
        for c in changes:
            out_console.print(
                f"{c['key']}: {c['before'] or 'ok/absent'} -> {c['after'] or 'ok/absent'}",
                highlight=False,
                markup=False,
            )
        out_console.print(f"{len(changes)} key(s) changed; counts {delta}", highlight=False)

    _emit(state, doc, human)


def _classes(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


@orphans.command(name="clean")
@click.option(
    "--report",
    "report_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    metavar="REPORT.json",
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
@click.option("--confirm", metavar="REPORT_ID", help="Repeat the report's id.")
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
    with _errors(state), _Bar(_progress_enabled(state)) as bar:
        report = OrphanReport.load(report_path)
        if not dry_run and confirm is None:
            raise ConfigError(f"pass --confirm {report.id} (try --dry-run first)")
        if confirm is not None and confirm != report.id:
            raise ConfirmationMismatch(f"--confirm must repeat the report id {report.id}")
        rec = _reconciler(
            state,
            db,
            artifacts or report.source.store,
            bar,
            pg_bindir=pg_bindir,
            quarantine=quarantine,
            transfers=transfers,
        )
        plan = rec.plan(report, _classes(classes))
        result = rec.clean(
            plan, confirm=plan.id, mode=mode, dry_run=dry_run, max_report_age=_duration(max_age)
        )
    _emit(
        state,
        result.summary(),
        lambda: out_console.print(
            f"{result.mode}: {result.done} ({human_bytes(result.bytes)}); "
            f"{len(result.skipped)} left alone; undo with 'gocdbackup orphans undo {result.id}'"
            if result.mode == "quarantine"
            else f"{result.mode}: {result.done} ({human_bytes(result.bytes)}); "
            f"{len(result.skipped)} left alone",
            highlight=False,
            markup=False,
        ),
    )


@orphans.command(name="undo")
@click.argument("cleanup_id")
@store_option()
@quarantine_option
@click.pass_obj
def orphans_undo(state: State, *, cleanup_id: str, artifacts: str, quarantine: str | None) -> None:
    """Put back every object a quarantine cleanup moved, byte for byte."""
    with _errors(state), _Bar(_progress_enabled(state)) as bar:
        rec = _reconciler(state, None, artifacts, bar, quarantine=quarantine)
        result = rec.undo(cleanup_id)
        if result.conflicts or result.lost:
            raise IntegrityError(
                f"undo of {cleanup_id}: {result.restored} restored, {len(result.conflicts)} "
                f"key(s) written again since the cleanup (their quarantined copies are kept), "
                f"{len(result.lost)} without a quarantined copy; the records are kept",
                problems=[f"{k}: written again" for k in result.conflicts]
                + [f"{k}: no quarantined copy" for k in result.lost],
            )
    _emit(state, result.summary(), lambda: out_console.print(result.summary(), highlight=False))


@orphans.command(name="list")
@store_option()
@quarantine_option
@click.pass_obj
def orphans_list(state: State, *, artifacts: str, quarantine: str | None) -> None:
    """The cleanups whose quarantined objects are kept."""
    with _errors(state):
        found = _reconciler(state, None, artifacts, None, quarantine=quarantine).cleanups()

    def human() -> None:
        for c in found:
            out_console.print(c, highlight=False)

    _emit(state, found, human)


@orphans.command(name="purge")
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
    with _errors(state):
        rec = _reconciler(state, None, artifacts, None, quarantine=quarantine)
        summary = rec.purge_quarantine(_duration(older_than), confirm=confirm)
    _emit(state, summary, lambda: out_console.print(summary, highlight=False))


def _print_runbook(report: RunbookReport) -> None:
    for n, (name, detail) in enumerate(report.steps, 1):
        out_console.print(f"{n}. {name}: {detail}", highlight=False, markup=False)
    if report.confirm_id:
        out_console.print(
            f"to go on, run again with --confirm {report.confirm_id}", highlight=False
        )


@click.group()
def runbook() -> None:
    """gocdnext's disaster runbooks as commands."""


@runbook.command(name="lost-bucket")
@db_option
@store_option()
@repo_options
@grace_option
@click.option("--confirm", metavar="ID", help="Retire the rows no backup can recover.")
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
) -> None:
    """Lost the bucket, kept Postgres: recover every object backups hold, then retire the rest."""
    with _errors(state), _Bar(_progress_enabled(state)) as bar:
        gb = _open(state, repo, password_file, bar)
        rec = _reconciler(state, db, artifacts, bar, pg_bindir=pg_bindir)
        report = rec.lost_bucket(gb, grace=_duration(grace), confirm=confirm)
    _emit(state, report.summary(), lambda: _print_runbook(report))


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
    """Lost Postgres, kept the bucket: after the restore, quarantine objects no row references."""
    with _errors(state), _Bar(_progress_enabled(state)) as bar:
        rec = _reconciler(state, db, artifacts, bar, pg_bindir=pg_bindir)
        report = rec.lost_database(grace=_duration(grace), confirm=confirm, mode=mode)
    _emit(state, report.summary(), lambda: _print_runbook(report))
