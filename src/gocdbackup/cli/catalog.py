"""``gocdbackup list``, ``show``, ``verify``, ``pin`` and ``unpin``: the commands that read the
repository's backups, check them, or mark them to keep."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.table import Column, Table

from gocdbackup.cli.common import (
    EXIT_FAILED,
    JsonCommand,
    State,
    emit,
    err_console,
    handle_errors,
    out_console,
)
from gocdbackup.cli.options import open_repo, repo_options, to_percent
from gocdbackup.model import BackupSet, Manifest
from gocdbackup.model.render import human_bytes


@click.command(cls=JsonCommand, name="list")
@repo_options
@click.pass_obj
def list_(state: State, repo: str, password_file: str | None) -> None:
    """List the backups in the repository, oldest first."""
    with handle_errors(state):
        backups = open_repo(state, repo, password_file).list_backups()
    emit(state, backups.rows(), lambda: _print_list(backups))


def _print_list(backups: list[BackupSet]) -> None:
    table = Table(
        Column("id", no_wrap=True),
        Column("created (UTC)", no_wrap=True),
        Column("label", min_width=5),
        Column("database", min_width=8),
        Column("goose", min_width=5),
        Column("size", no_wrap=True, justify="right"),
        Column("stored", no_wrap=True, justify="right"),
        Column("dedup", min_width=5, justify="right"),
        box=None,
    )
    for b in backups:
        s = b.summary()
        table.add_row(
            b.id,
            f"{b.created_at:%Y-%m-%d %H:%M}",
            b.label,
            b.database.name,
            "-" if b.point.goose_version is None else str(b.point.goose_version),
            human_bytes(b.size_bytes),
            human_bytes(b.stored_bytes),
            f"{s['dedup_ratio']:.0%}",
        )
    out_console.print(table if backups else "no backups yet")


@click.command(cls=JsonCommand)
@click.argument("backup_id")
@repo_options
@click.pass_obj
def show(state: State, backup_id: str, repo: str, password_file: str | None) -> None:
    """Show one backup: consistency point, database, tables."""
    with handle_errors(state):
        b = open_repo(state, repo, password_file).get_backup(backup_id)
    doc = Manifest(backup=b).to_dict()
    for c in doc["components"]:
        c["chunks"] = len(c["chunks"])
    doc["summary"] = b.summary()
    emit(state, doc, lambda: _print_show(b))


def _print_show(b: BackupSet) -> None:
    out_console.print(b.describe(), highlight=False, markup=False)
    p = b.point
    facts = Table(Column("", style="bold"), "", box=None, show_header=False)
    facts.add_row("label", b.label or "-")
    facts.add_row("pinned", b.pin or "no")
    facts.add_row("snapshot", p.snapshot_at.isoformat())
    facts.add_row("WAL LSN", f"{p.wal_lsn} (timeline {p.timeline})")
    facts.add_row("server", f"PostgreSQL {p.server_version}, pg_dump {b.database.pg_dump_version}")
    facts.add_row(
        "goose version",
        "absent (no goose_db_version table)" if p.goose_version is None else str(p.goose_version),
    )
    if b.artifacts:
        facts.add_row("artefacts", b.describe_artifacts())
    if b.key_check is not None:
        facts.add_row("application key", b.key_check.describe())
    out_console.print(facts)
    table = Table("table", Column("rows", justify="right"), box=None)
    for t in b.database.tables:
        table.add_row(t.name, f"{t.rows:,}")
    out_console.print(table)


@click.command(cls=JsonCommand)
@click.argument("backup_id", required=False)
@repo_options
@click.option(
    "--read-data",
    default="0",
    metavar="PERCENT",
    help="Also download, decrypt and hash this share of the data (10, 10% or 10.5%; at "
    "least one chunk of each part of each backup).",
    callback=lambda _ctx, _param, value: to_percent(value),
)
@click.pass_obj
def verify(
    state: State, backup_id: str | None, repo: str, password_file: str | None, read_data: float
) -> None:
    """Check the repository's backups (structure, and optionally a sample of the data); name
    every damaged blob and what it breaks."""
    with handle_errors(state):
        report = open_repo(state, repo, password_file).verify(backup_id, read_data=read_data)
    emit(state, report.summary(), lambda: _print_verify(report.checks, report.problems))
    if not report.ok:
        if not state.as_json:
            err_console.print("[bold red]error:[/] the repository is damaged")
        sys.exit(EXIT_FAILED)


def _print_verify(checks: Any, problems: Any) -> None:
    """One line per backup, then one per damaged blob of it naming what the blob breaks."""
    for c in checks:
        out_console.print(
            ("ok      " if c.ok else "DAMAGED ") + str(c), highlight=False, markup=False
        )
        for d in c.damaged:
            out_console.print(f"          {d.describe()}", highlight=False, markup=False)
    for p in problems:
        out_console.print(f"DAMAGED {p}", highlight=False, markup=False)


@click.command(cls=JsonCommand)
@click.argument("backup_id")
@repo_options
@click.option("--reason", required=True, help="Why it is kept (e.g. 'legal hold').")
@click.pass_obj
def pin(state: State, backup_id: str, repo: str, password_file: str | None, reason: str) -> None:
    """Pin a backup: retention never forgets it."""
    with handle_errors(state):
        b = open_repo(state, repo, password_file).pin(backup_id, reason=reason)
    emit(state, b.summary(), lambda: out_console.print(f"pinned {b.id}: {b.pin}", highlight=False))


@click.command(cls=JsonCommand)
@click.argument("backup_id")
@repo_options
@click.pass_obj
def unpin(state: State, backup_id: str, repo: str, password_file: str | None) -> None:
    """Remove a backup's pin."""
    with handle_errors(state):
        b = open_repo(state, repo, password_file).unpin(backup_id)
    emit(state, b.summary(), lambda: out_console.print(f"unpinned {b.id}", highlight=False))
