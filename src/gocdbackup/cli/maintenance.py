"""``gocdbackup retention plan|apply``, ``gc`` and ``unlock``: forgetting old backups,
reclaiming their space, and removing the locks crashed processes left."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.table import Column, Table

from gocdbackup import volume_snapshots
from gocdbackup.cli.common import (
    EXIT_INCOMPLETE,
    JsonCommand,
    JsonGroup,
    State,
    carried,
    command_line,
    emit,
    err_console,
    given,
    handle_errors,
    next_steps,
    out_console,
)
from gocdbackup.cli.options import kube_options, open_repo, repo_options, to_duration
from gocdbackup.errors import GocdBackupError
from gocdbackup.model.kube import VolumeSnapshotInfo
from gocdbackup.model.render import human_bytes
from gocdbackup.model.retention import RetentionPlan, RetentionPolicy

F = TypeVar("F", bound=Callable[..., Any])


def policy_options(fn: F) -> F:
    for flag, help_text in reversed(
        [
            ("--keep-last", "Keep the N newest successful backups."),
            ("--keep-daily", "Keep the newest backup of each of the last N days that have one."),
            ("--keep-weekly", "... of each of the last N ISO weeks that have one."),
            ("--keep-monthly", "... of each of the last N months that have one."),
            ("--keep-yearly", "... of each of the last N years that have one."),
        ]
    ):
        fn = click.option(flag, type=click.IntRange(min=0), default=0, metavar="N", help=help_text)(
            fn
        )
    fn = click.option(
        "--keep-within", metavar="DURATION", help="Keep every backup younger than this (e.g. 7d)."
    )(fn)
    return click.option(
        "--tz",
        default="UTC",
        show_default=True,
        metavar="ZONE",
        help="Time zone that days, weeks and months are counted in.",
    )(fn)


def _policy(kw: dict[str, Any]) -> RetentionPolicy:
    within = kw.pop("keep_within")
    return RetentionPolicy(
        keep_last=kw.pop("keep_last"),
        keep_daily=kw.pop("keep_daily"),
        keep_weekly=kw.pop("keep_weekly"),
        keep_monthly=kw.pop("keep_monthly"),
        keep_yearly=kw.pop("keep_yearly"),
        keep_within=to_duration(within) if within else None,
        tz=kw.pop("tz"),
    )


@click.group(cls=JsonGroup)
def retention() -> None:
    """Forget old backups by a daily/weekly/monthly/yearly policy (pins are always kept)."""


def _print_plan(plan: RetentionPlan) -> None:
    table = Table(Column("id", no_wrap=True), "action", "reasons", box=None)
    for d in plan.decisions:
        table.add_row(d.backup_id, "keep" if d.keep else "[red]forget[/]", ", ".join(d.reasons))
    out_console.print(table)
    out_console.print(plan.summary(), highlight=False, markup=False)


@retention.command(name="plan")
@repo_options
@policy_options
@click.pass_obj
def retention_plan(state: State, /, repo: str, password_file: str | None, **kw: Any) -> None:
    """Show what the policy keeps and forgets, and the plan id to confirm (changes nothing)."""
    with handle_errors(state):
        plan = open_repo(state, repo, password_file).plan_retention(_policy(kw))
    emit(state, plan.to_dict(), lambda: _print_plan(plan))


@retention.command(name="apply")
@repo_options
@policy_options
@click.option("--confirm", required=True, metavar="PLAN_ID", help="The id 'retention plan' showed.")
@kube_options
@click.pass_obj
def retention_apply(
    state: State,
    /,
    *,
    repo: str,
    password_file: str | None,
    confirm: str,
    kubeconfig: str | None,
    kube_context: str | None,
    **kw: Any,
) -> None:
    """Forget what the plan forgets (and delete the VolumeSnapshots those backups kept);
    refused if the plan is no longer the confirmed one."""
    with handle_errors(state):
        gb = open_repo(state, repo, password_file)
        plan = gb.plan_retention(_policy(kw))
        before = {b.id: b for b in gb.list_backups()}
        forgotten = gb.apply_retention(plan, confirm=confirm)
    kept = [s for i in forgotten if (s := before[i].volume_snapshot) is not None]
    deleted, left = _delete_snapshots(kept, kubeconfig, kube_context)
    snapshots = sorted({s.namespace for s in left})
    prune = [
        command_line(
            [],
            add=(
                "k8s",
                "snapshots",
                "--k8s-namespace",
                ns,
                *carried(
                    state.argv,
                    "--repo",
                    "--password-file",
                    "--storage-option",
                    "--kubeconfig",
                    "--context",
                ),
                "--prune",
            ),
        )
        for ns in snapshots
    ]
    gc_command = command_line(
        [],
        add=(
            "gc",
            *given(state.argv, "--repo"),
            *given(state.argv, "--password-file"),
            *given(state.argv, "--storage-option"),
        ),
    )
    document = {
        **plan.to_dict(),
        "forgotten": list(forgotten),
        "next": gc_command,
        "volume_snapshots_deleted": deleted,
        "prune": prune,
    }
    emit(
        state,
        document,
        lambda: out_console.print(
            f"forgot {len(forgotten)} backup(s); their space is reclaimed by: {gc_command}"
            + (f"\ndeleted their VolumeSnapshots: {', '.join(deleted)}" if deleted else ""),
            highlight=False,
            markup=False,
        ),
    )
    if prune:
        what = f"{len(left)} VolumeSnapshot(s) of the forgotten backups could not be deleted"
        next_steps(state, [(what, command) for command in prune])
        sys.exit(EXIT_INCOMPLETE)


def _delete_snapshots(
    snapshots: list[VolumeSnapshotInfo], kubeconfig: str | None, context: str | None
) -> tuple[list[str], list[VolumeSnapshotInfo]]:
    """Delete each snapshot (its namespace reached as the options say): (deleted, left)."""
    deleted: list[str] = []
    left: list[VolumeSnapshotInfo] = []
    for snapshot in snapshots:
        try:
            kube = volume_snapshots(snapshot.namespace, kubeconfig=kubeconfig, context=context)
            kube.delete(snapshot.name)
            deleted.append(f"{snapshot.namespace}/{snapshot.name}")
        except GocdBackupError as exc:
            err_console.print(f"not deleted: {snapshot.describe()}: {exc}", highlight=False)
            left.append(snapshot)
    return deleted, left


@click.command(cls=JsonCommand)
@repo_options
@click.option("--dry-run", is_flag=True, help="Only report what would be deleted.")
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="Keep unreferenced blobs younger than this (a backup may be writing them).",
)
@click.pass_obj
def gc(state: State, repo: str, password_file: str | None, dry_run: bool, grace: str) -> None:
    """Delete the blobs no backup references (after retention forgot backups)."""
    with handle_errors(state):
        result = open_repo(state, repo, password_file).gc(grace=to_duration(grace), dry_run=dry_run)
    s = result.summary()

    def human() -> None:
        verb = "would delete" if dry_run else "deleted"
        count = s["to_delete"] if dry_run else s["deleted"]
        size = s["reclaimable_bytes"] if dry_run else s["deleted_bytes"]
        out_console.print(
            f"{verb} {count} of {s['blobs']} blobs ({human_bytes(size)}); "
            f"{s['too_recent']} unreferenced blobs are younger than {s['grace']}",
            highlight=False,
        )

    emit(state, s, human)


@click.command(cls=JsonCommand)
@repo_options
@click.option(
    "--stale",
    is_flag=True,
    required=True,
    help="Remove expired lock files (the only kind this command removes).",
)
@click.pass_obj
def unlock(state: State, repo: str, password_file: str | None, stale: bool) -> None:
    """Remove stale locks left by crashed processes; live locks are never removed."""
    with handle_errors(state):
        removed = open_repo(state, repo, password_file).unlock_stale()
    emit(
        state,
        {"removed": removed},
        lambda: out_console.print(f"removed {len(removed)} stale lock(s)", highlight=False),
    )
