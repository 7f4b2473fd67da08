"""The CLI's ``orphans`` and ``runbook`` groups (registered on ``gocdbackup.cli.main``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.table import Column, Table

from gocdbackup._reconciler import Reconciler
from gocdbackup.cli import (
    EXIT_INCOMPLETE,
    State,
    _Bar,
    _command_line,
    _duration,
    _emit,
    _errors,
    _given,
    _Group,
    _next_steps,
    _open,
    _percent,
    _progress_enabled,
    artifact_options,
    db_option,
    err_console,
    out_console,
    repo_options,
    transfers_option,
)
from gocdbackup.errors import (
    ConfigError,
    IntegrityError,
    ReportMismatch,
    ScanInterrupted,
)
from gocdbackup.model.cleanup import CleanupResult
from gocdbackup.model.durations import format_duration
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
    held = "" if report.store_objects is None else f", {report.store_objects:,} object(s) listed"
    out_console.print(
        f"report {report.id}: {state}{held}; {report.source.store} against "
        f"{report.source.database}",
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


@click.group(cls=_Group)
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
                again = _command_line(state.argv, drop=("--resume",), add=("--resume", out))
                raise ScanInterrupted(f"{exc}; resume with: {again}", exc.report) from exc
            raise
        if out:
            report.save(out)
        if csv_path:
            report.write_csv(csv_path)
    _emit(state, report.summary(), lambda: _print_report(report))
    to_clean = sum(report.counts.get(c, 0) for c in ("orphan_object", "partial_upload"))
    if out and to_clean:
        _next_steps(
            state,
            [
                (
                    f"{to_clean:,} object(s) without rows; see what a cleanup would do",
                    _clean_command(state, out, ("--dry-run",)),
                )
            ],
        )


def _carried(argv: list[str], *options: str) -> list[str]:
    return [word for option in options for word in _given(argv, option)]


def _clean_command(state: State, report_path: str, extra: tuple[str, ...]) -> str:
    carried = _carried(
        state.argv, "--db", "--pg-bindir", "--artifacts", "--artifacts-option", "--quarantine"
    )
    return _command_line([], add=("orphans", "clean", "--report", report_path, *carried, *extra))


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
        moved = ", ".join(f"{cls} {n:+,}" for cls, n in delta.items()) or "no class changed"
        out_console.print(f"{len(changes):,} key(s) changed; {moved}", highlight=False)

    _emit(state, doc, human)


def _classes(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


@orphans.command(name="clean")
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
    with _errors(state), _Bar(_progress_enabled(state)) as bar:
        report = OrphanReport.load(report_path)
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
        if not dry_run and confirm is None:
            apply = _command_line(state.argv, drop=("--confirm",), add=("--confirm", plan.id))
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
            max_report_age=_duration(max_age),
        )
    doc = {**result.summary(), "report_id": report.id, "complete": True}
    left = _clean_left(state, report, result, plan.id, artifacts, dry_run=dry_run)
    doc["complete"] = not left
    doc["left"] = [{"what": text, "command": command} for text, command in left]
    _emit(state, doc, lambda: _print_clean(state, result, artifacts or report.source.store))
    _next_steps(state, left)
    if left and not dry_run:
        sys.exit(EXIT_INCOMPLETE)


def _print_clean(state: State, result: CleanupResult, store: str) -> None:
    out_console.print(result.describe(), highlight=False, markup=False)
    if result.mode == "quarantine" and any(result.done.values()):
        carried = _carried(state.argv, "--artifacts-option", "--quarantine")
        undo = _command_line([], add=("orphans", "undo", result.id, "--artifacts", store, *carried))
        out_console.print(f"undo with: {undo}", highlight=False, markup=False, soft_wrap=True)


#: why a cleanup left a key alone that a new scan has to judge again
_RESCAN = frozenset(
    {"changed since the scan", "newer than the grace window", "changed during the cleanup"}
)


def _clean_left(
    state: State,
    report: OrphanReport,
    result: CleanupResult,
    plan_id: str,
    artifacts: str | None,
    *,
    dry_run: bool,
) -> list[tuple[str, str | None]]:
    left: list[tuple[str, str | None]] = []
    if dry_run:
        if result.done and sum(result.done.values()):
            apply = _command_line(
                state.argv,
                drop=("--confirm",),
                drop_flags=("--dry-run",),
                add=("--confirm", plan_id),
            )
            left.append(
                (f"{sum(result.done.values()):,} object(s) would be moved; to do it", apply)
            )
        return left
    rescan = sum(1 for why in result.skipped.values() if why in _RESCAN)
    unjudged = sum(1 for row in report.rows(OrphanClass.TOO_RECENT) if row.unjudged_object)
    if rescan or unjudged:
        store = artifacts or report.source.store
        carried = _carried(state.argv, "--db", "--pg-bindir", "--artifacts-option")
        scan = _command_line(
            [],
            add=("orphans", "scan", *carried, "--artifacts", store, "--out", _next_report(report)),
        )
        what = []
        if rescan:
            what.append(f"{rescan:,} object(s) changed or grew young again since the scan")
        if unjudged:
            what.append(
                f"{unjudged:,} object(s) without rows were younger than the grace window "
                f"({format_duration(report.grace)}) at the scan"
            )
        left.append(
            (
                "; ".join(what) + ": scan again (after the grace window), then clean with the "
                "new report",
                scan,
            )
        )
    return left


def _next_report(report: OrphanReport) -> str:
    return f"orphans-{report.scanned_at:%Y%m%d}-next.jsonl"


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
    _emit(
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


@orphans.command(name="list")
@store_option()
@quarantine_option
@click.pass_obj
def orphans_list(state: State, *, artifacts: str, quarantine: str | None) -> None:
    """The cleanups whose quarantined objects are kept."""
    with _errors(state):
        found = _reconciler(state, None, artifacts, None, quarantine=quarantine).cleanups()

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
    cleanups, size = len(summary["cleanups"]), human_bytes(int(summary["bytes"]))

    def human() -> None:
        verb = "purged" if summary["applied"] else "would purge"
        out_console.print(
            f"{verb} {summary['objects']:,} quarantined object(s) ({size}) of {cleanups} "
            f"cleanup(s) older than {older_than}",
            highlight=False,
        )

    _emit(state, summary, human)
    if not summary["applied"] and cleanups:
        apply = _command_line(state.argv, drop=("--confirm",), add=("--confirm", summary["id"]))
        _next_steps(state, [("to purge them for good", apply)])


def _print_runbook(report: RunbookReport) -> None:
    for n, step in enumerate(report.steps, 1):
        out_console.print(f"{n}. {step.name}: {step.text}", highlight=False, markup=False)
    out_console.print(
        f"runbook {report.runbook}: "
        + ("complete: the store and the database agree" if report.complete else "INCOMPLETE"),
        highlight=False,
        markup=False,
    )


def _runbook_left(state: State, report: RunbookReport) -> list[tuple[str, str | None]]:
    """Each outstanding item with the command that finishes it."""
    left: list[tuple[str, str | None]] = []
    for item in report.outstanding:
        text = f"{item.count:,} {item.reason}"
        if item.kind == "confirm" and item.confirm_id:
            command: str | None = _command_line(
                state.argv, drop=("--confirm",), add=("--confirm", item.confirm_id)
            )
        elif item.kind == "held_back":
            when = (
                "" if item.retry_after is None else f" after {item.retry_after:%Y-%m-%d %H:%M} UTC"
            )
            text += f"; run again{when}"
            command = _command_line(state.argv, drop=("--confirm",))
        else:
            command = _lost_bucket_command(state)
            if command is None:
                text += " (give it the repository that holds the backups: --repo URL)"
        left.append((text, command))
    return left


def _lost_bucket_command(state: State) -> str | None:
    repo = _carried(state.argv, "--repo", "--password-file", "--storage-option")
    if not repo and not os.environ.get("GOCDBACKUP_REPO"):
        return None
    carried = _carried(state.argv, "--db", "--pg-bindir", "--artifacts", "--artifacts-option")
    return _command_line([], add=("runbook", "lost-bucket", *carried, *repo))


def _finish_runbook(state: State, report: RunbookReport) -> None:
    left = _runbook_left(state, report)
    doc = {**report.summary(), "left": [{"what": t, "command": c} for t, c in left]}
    _emit(state, doc, lambda: _print_runbook(report))
    _next_steps(state, left)
    if not report.complete:
        sys.exit(EXIT_INCOMPLETE)


@click.group(cls=_Group)
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
    with _errors(state), _Bar(_progress_enabled(state)) as bar:
        gb = _open(state, repo, password_file, bar)
        rec = _reconciler(state, db, artifacts, bar, pg_bindir=pg_bindir)
        report = rec.lost_bucket(
            gb, grace=_duration(grace), confirm=confirm, allow_empty_store=allow_empty_store
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
    with _errors(state), _Bar(_progress_enabled(state)) as bar:
        rec = _reconciler(state, db, artifacts, bar, pg_bindir=pg_bindir)
        report = rec.lost_database(grace=_duration(grace), confirm=confirm, mode=mode)
    _finish_runbook(state, report)
