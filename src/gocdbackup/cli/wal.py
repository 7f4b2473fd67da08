"""``gocdbackup wal push|fetch|verify``: PostgreSQL's WAL archive in the repository.

Set in postgresql.conf (the server runs these as its own user: the repository and the
password file must be reachable by it)::

    archive_mode = on
    archive_command = 'gocdbackup wal push %p --repo URL --password-file FILE'
    restore_command = 'gocdbackup wal fetch %f %p --repo URL --password-file FILE'

or, with nothing installed where the server runs, ``gocdbackup wal stream --db DSN`` beside it.
"""

from __future__ import annotations

import signal
import sys
import threading

import click

from gocdbackup import stream_wal, wal_verify
from gocdbackup.cli.common import (
    EXIT_FAILED,
    JsonCommand,
    State,
    emit,
    handle_errors,
    out_console,
)
from gocdbackup.cli.options import db_option, open_repo, repo_options
from gocdbackup.cli.wal_hooks import wal


@wal.command("verify", cls=JsonCommand)
@repo_options
@click.pass_obj
def verify(state: State, *, repo: str, password_file: str | None) -> None:
    """Each timeline's archived segments from first to last; exits 1 on a gap or a damaged
    entry."""
    with handle_errors(state):
        report = wal_verify(open_repo(state, repo, password_file))

    def human() -> None:
        for run in report.timelines:
            out_console.print(
                f"timeline {run.timeline}: {run.segments} segments, {run.first} to {run.last}",
                highlight=False,
            )
        for gap in report.gaps:
            out_console.print(f"[red]GAP[/] {gap}", highlight=False)
        for name in report.damaged:
            out_console.print(f"[red]DAMAGED[/] {name} (unreadable or blobs missing)")
        if report.ok:
            out_console.print(f"ok: {report.files} WAL files, no gaps", highlight=False)

    emit(state, report.summary(), human)
    if not report.ok:
        sys.exit(EXIT_FAILED)


@wal.command("stream", cls=JsonCommand)
@repo_options
@db_option
@click.option(
    "--slot",
    default="gocdbackup",
    show_default=True,
    help="The physical replication slot (created if absent): the server keeps the WAL not "
    "received yet, also while this command is stopped.",
)
@click.option(
    "--spool",
    type=click.Path(file_okay=False),
    help="Where each segment waits until it is pushed (default: a private temporary directory).",
)
@click.pass_obj
def stream(
    state: State,
    *,
    repo: str,
    password_file: str | None,
    db: str,
    pg_bindir: str | None,
    slot: str,
    spool: str | None,
) -> None:
    """Archive the WAL over a replication connection (pg_receivewal), each completed segment
    pushed as it arrives, until Ctrl-C or SIGTERM; then the partial segment too."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with handle_errors(state):
        gb = open_repo(state, repo, password_file, pg_bindir=pg_bindir)
        report = stream_wal(gb, db, slot=slot, spool=spool, stop=stop)

    def human() -> None:
        out_console.print(
            f"stopped: {report.segments} segment(s) archived"
            + (f", and the partial {report.partial}" if report.partial else ""),
            highlight=False,
        )

    emit(state, report.summary(), human)


__all__ = ["wal"]  # the group of gocdbackup.cli.wal_hooks, with verify and stream added here
