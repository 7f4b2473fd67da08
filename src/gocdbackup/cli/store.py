"""``gocdbackup store audit|restore-to-time``: the artefact bucket's own safety settings, and
rolling it (or a copy of it) back to an instant from its versions."""

from __future__ import annotations

import shlex
import sys

import click
from rich.table import Table

from gocdbackup._store_pit import (
    audit_store,
    emit_batch_rollback,
    restore_store_to_time,
    run_batch_manifest,
)
from gocdbackup._time_restore import restore_to_time
from gocdbackup.cli.common import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    JsonCommand,
    JsonGroup,
    Left,
    State,
    command_line,
    emit,
    given,
    handle_errors,
    left_document,
    next_steps,
    out_console,
    progress_bar,
)
from gocdbackup.cli.options import (
    artifact_options,
    db_option,
    open_repo,
    repo_options,
    store_option,
)
from gocdbackup.model.pitr import TimeRestoreReport
from gocdbackup.model.render import human_bytes
from gocdbackup.model.store_audit import CHECKS, StoreAudit
from gocdbackup.ops.bucket_pit import PitResult

_server_side_transfers = click.option(
    "--transfers",
    type=click.IntRange(1, 256),
    default=32,
    show_default=True,
    help="Server-side copies in flight at once.",
)


@click.group(cls=JsonGroup)
def store() -> None:
    """The artefact bucket itself: audit its settings, roll it back to a point in time."""


def _print_audit(audit: StoreAudit) -> None:
    table = Table("check", "", "found", "advice", box=None)
    for f in audit.findings:
        mark = "[green]ok" if f.ok else ("[dim]skipped" if f.check in audit.skipped else "[red]NO")
        table.add_row(f.check, mark, f.detail, f.advice)
    out_console.print(table)
    verdict = "passes" if audit.ok else f"falls short on {len(audit.failed)} check(s)"
    out_console.print(f"{audit.store} {verdict}", highlight=False, markup=False)


@store.command(name="audit", cls=JsonCommand)
@store_option()
@click.option(
    "--keep-days",
    type=click.IntRange(1, None),
    default=30,
    show_default=True,
    help="The backup retention noncurrent versions must outlive.",
)
@click.option(
    "--skip",
    multiple=True,
    type=click.Choice(CHECKS),
    help="Accept a check falling short (still reported; repeatable).",
)
@click.pass_obj
def audit(state: State, *, artifacts: str, keep_days: int, skip: tuple[str, ...]) -> None:
    """Versioning, lifecycle, replication, object lock, encryption and public access of the
    artefact bucket, with the guide's advice for each shortfall; exits 1 if any falls short."""
    with handle_errors(state):
        result = audit_store(
            artifacts, keep_days=keep_days, skip=skip, storage_options=state.artifact_options
        )
    emit(state, result.to_dict(), lambda: _print_audit(result))
    if not result.ok:
        if not state.as_json:
            accept = command_line(
                state.argv, add=tuple(w for f in result.failed for w in ("--skip", f.check))
            )
            next_steps(
                state,
                [
                    (
                        "fix what falls short (advice above), or accept it knowingly",
                        accept,
                    )
                ],
            )
        sys.exit(EXIT_FAILED)


def _print_pit(result: PitResult) -> None:
    plan = result.plan
    counts = ", ".join(f"{n:,} {action}" for action, n in plan.counts().items())
    where = plan.store if plan.into is None else f"{plan.into} (from {plan.store})"
    verb = "plan" if result.dry_run else "rolled"
    out_console.print(
        f"{verb} {plan.id}: {where} to {plan.at.isoformat()}: {plan.keys:,} key(s) listed; "
        f"{counts}; {human_bytes(plan.bytes_to_copy())} copied server-side",
        highlight=False,
        markup=False,
    )
    if not result.dry_run:
        done = ", ".join(f"{n:,} {action}" for action, n in result.done.items())
        out_console.print(f"done: {done or 'nothing to do'}", highlight=False, markup=False)
        for key, reason in sorted(result.failed.items())[:20]:
            out_console.print(f"  failed: {key} ({reason})", highlight=False, markup=False)


@store.command(name="restore-to-time", cls=JsonCommand)
@store_option()
@click.option("--time", "at", required=True, metavar="T", help="ISO 8601 time with a zone.")
@click.option(
    "--into",
    metavar="STORE_URL",
    help="Write the bucket as it was into this bucket (same provider) and leave it untouched.",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be done, and the plan id.")
@click.option("--confirm", metavar="PLAN_ID", help="Repeat the plan id the dry run printed.")
@_server_side_transfers
@click.option(
    "--emit-batch-manifest",
    "manifest",
    type=click.Path(dir_okay=False),
    help="With --confirm, on S3: delete here, and write the copies as an S3 Batch "
    "Operations manifest (FILE) and job (FILE.job.json) to submit instead of copying.",
)
@click.option("--batch-account", metavar="ID", help="The AWS account the job runs in.")
@click.option("--batch-role", metavar="ARN", help="The IAM role the job runs as.")
@click.pass_obj
def store_restore_to_time(
    state: State,
    *,
    artifacts: str,
    at: str,
    into: str | None,
    dry_run: bool,
    confirm: str | None,
    transfers: int,
    manifest: str | None,
    batch_account: str | None,
    batch_role: str | None,
) -> None:
    """Make the bucket hold what it held at --time: each key's version current then becomes
    current again (server-side copy; newer versions stay as history), keys created later are
    deleted (a delete marker: their bytes stay a version).  Dry run first, then --confirm."""
    if manifest is not None and confirm is not None and not dry_run:
        if into is not None or not batch_account or not batch_role:
            raise click.UsageError(
                "--emit-batch-manifest needs --batch-account and --batch-role, and no --into"
            )
        _emit_batch(state, artifacts, at, confirm, manifest, batch_account, batch_role)
        return
    with handle_errors(state), progress_bar(state) as bar:
        result = restore_store_to_time(
            artifacts,
            at,
            into=into,
            dry_run=dry_run or confirm is None,
            confirm=confirm,
            storage_options=state.artifact_options,
            transfers=transfers,
            progress=bar if bar.enabled else None,
        )
    doc = result.to_dict()
    apply = command_line(
        state.argv,
        drop=("--confirm",),
        drop_flags=("--dry-run",),
        add=("--confirm", result.plan.id),
    )
    left: Left = []
    if result.dry_run and result.plan.work():
        left.append(("carry out this plan", apply))
    elif result.failed:
        left.append((f"{len(result.failed):,} key(s) failed; running it again retries them", apply))
    doc["left"] = left_document(left)
    emit(state, doc, lambda: _print_pit(result))
    next_steps(state, left)
    if result.failed or (result.dry_run and not dry_run and result.plan.work()):
        # keys failed, or (no --dry-run, no --confirm) only the plan was shown: not done
        sys.exit(EXIT_INCOMPLETE)


def _emit_batch(  # noqa: PLR0917 - the command's own values, passed on once
    state: State, store: str, at: str, confirm: str, manifest: str, account: str, role: str
) -> None:
    with handle_errors(state), progress_bar(state) as bar:
        done = emit_batch_rollback(
            store,
            at,
            confirm=confirm,
            manifest_path=manifest,
            account_id=account,
            role_arn=role,
            storage_options=state.artifact_options,
            progress=bar if bar.enabled else None,
        )
    upload, submit = done.commands(account)
    again = command_line(
        state.argv, drop=("--emit-batch-manifest", "--batch-account", "--batch-role")
    )
    left: Left = [
        (f"upload the manifest of {done.copies:,} copies", upload),
        ("submit the S3 Batch Operations job", submit),
        ("once the job has finished, check that nothing is left (it plans nothing)", again),
    ]
    if done.failed:
        left.insert(0, (f"{len(done.failed):,} delete(s) failed; run this again", None))
    emit(
        state,
        {**done.to_dict(), "left": left_document(left)},
        lambda: out_console.print(
            f"{done.plan_id}: {done.deleted:,} key(s) deleted here; {done.copies:,} copies "
            f"written to {done.manifest_path} and {done.job_path}",
            highlight=False,
            markup=False,
        ),
    )
    next_steps(state, left)
    sys.exit(EXIT_INCOMPLETE)  # the copies are the job's to do


@store.command(name="run-manifest", cls=JsonCommand)
@click.argument("manifest", type=click.Path(dir_okay=False))
@artifact_options
@_server_side_transfers
@click.pass_obj
def run_manifest_command(state: State, *, manifest: str, transfers: int) -> None:
    """Copy every version an --emit-batch-manifest manifest lists onto its key, here: what the
    S3 Batch Operations job does (for MinIO, or where Batch Operations is not wanted)."""
    with handle_errors(state), progress_bar(state) as bar:
        result = run_batch_manifest(
            manifest,
            storage_options=state.artifact_options,
            transfers=transfers,
            progress=bar if bar.enabled else None,
        )
    emit(state, result.to_dict(), lambda: _print_pit(result))
    if result.failed:
        next_steps(state, [("copies failed; run it again", command_line(state.argv))])
        sys.exit(EXIT_INCOMPLETE)


def _print_time_restore(report: TimeRestoreReport) -> None:
    plan = report.store_plan
    counts = ", ".join(f"{n:,} {action}" for action, n in plan["counts"].items())
    head = "plan" if report.dry_run else "restored"
    out_console.print(
        f"{head} {report.id}: gocdnext as it was at {report.at.isoformat()}: database from "
        f"physical backup {report.backup_id} recovered to that time; bucket {plan['store']}: "
        f"{counts}",
        highlight=False,
        markup=False,
    )
    if report.database is not None:
        db = report.database
        out_console.print(
            f"database {db.database!r}: {db.tables_checked} tables, {db.rows_checked:,} rows, "
            f"last transaction replayed committed at "
            f"{db.recovered_to.isoformat() if db.recovered_to else 'none'}",
            highlight=False,
            markup=False,
        )
    if report.orphan_counts is not None:
        others = {k: v for k, v in report.orphan_counts.items() if v and k != "ok"}
        others.pop("missing_object", None)
        verdict = (
            "clean (no row lacks its object)"
            if report.missing_objects == 0
            else f"{report.missing_objects:,} row(s) lack their object"
        )
        extra = "".join(f", {n:,} {c}" for c, n in sorted(others.items()))
        out_console.print(
            f"orphans of the pair: {verdict}; {report.orphan_counts.get('ok', 0):,} ok{extra} "
            f"(report {report.orphan_report})",
            highlight=False,
            markup=False,
        )


@click.command(name="restore-to-time", cls=JsonCommand)
@click.argument("at", metavar="T")
@repo_options
@db_option
@store_option()
@click.option("--dry-run", is_flag=True, help="Only the plan and its id.")
@click.option("--confirm", metavar="PLAN_ID", help="Repeat the plan id the dry run printed.")
@click.option("--replace", is_flag=True, help="Replace the database --db names if it exists.")
@_server_side_transfers
@click.pass_obj
def restore_to_time_command(
    state: State,
    *,
    at: str,
    repo: str,
    password_file: str | None,
    db: str,
    pg_bindir: str | None,
    artifacts: str,
    dry_run: bool,
    confirm: str | None,
    replace: bool,
    transfers: int,
) -> None:
    """gocdnext as it was at T, database and artefacts together: the database --db names
    recovered to T from the newest physical backup before it, the artefact bucket rolled to
    T from its versions, then the orphan scan of the pair.  Dry run first, then --confirm."""
    with handle_errors(state), progress_bar(state) as bar:
        gb = open_repo(state, repo, password_file, bar, pg_bindir=pg_bindir)
        report = restore_to_time(
            gb,
            at,
            db=db,
            artifacts=artifacts,
            dry_run=dry_run or confirm is None,
            confirm=confirm,
            replace=replace,
            bindir=pg_bindir,
            transfers=transfers,
        )
    apply = command_line(
        state.argv, drop=("--confirm",), drop_flags=("--dry-run",), add=("--confirm", report.id)
    )
    left: Left = []
    if report.dry_run:
        left.append(("carry out this plan", apply))
    elif report.store_failed:
        left.append((f"{len(report.store_failed):,} key(s) of the bucket failed", apply))
    elif not report.clean:
        scan = command_line(
            [],
            add=("orphans", "scan", *given(state.argv, "--artifacts-option"), "--grace", "0s"),
        )
        left.append(
            (
                f"{report.missing_objects:,} row(s) lack their object: see which (then the "
                "lost-bucket runbook writes them back from a backup)",
                f"{scan} --db {shlex.quote(db)} --artifacts {shlex.quote(artifacts)}",
            )
        )
    doc = {**report.summary(), "left": left_document(left)}
    emit(state, doc, lambda: _print_time_restore(report))
    next_steps(state, left)
    if left and not dry_run:
        sys.exit(EXIT_INCOMPLETE)
