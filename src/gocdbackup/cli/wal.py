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

from gocdbackup import stream_wal, wal_fetch, wal_push, wal_verify
from gocdbackup.cli.common import (
    EXIT_FAILED,
    JsonCommand,
    State,
    emit,
    fail,
    handle_errors,
    out_console,
)
from gocdbackup.cli.options import db_option, open_repo, repo_options
from gocdbackup.errors import WalMissing

#: what ``wal fetch`` exits with on a failure other than "not archived": above 125, which
#: PostgreSQL takes as a reason to abort recovery, not as the end of the archive
EXIT_ABORT_RECOVERY = 126


@click.group()
def wal() -> None:
    """PostgreSQL's WAL archive in the repository: archive_command (push), restore_command
    (fetch), and the check for gaps (verify)."""


@wal.command("push", cls=JsonCommand)
@click.argument("path")
@click.option("--name", help="Archive it under this name (default: PATH's file name).")
@repo_options
@click.pass_obj
def push(
    state: State, *, path: str, name: str | None, repo: str, password_file: str | None
) -> None:
    """Archive the WAL file PATH (archive_command: 'gocdbackup wal push %p ...'); a file
    archived already with the same content succeeds, with other content fails."""
    with handle_errors(state):
        gb = open_repo(state, repo, password_file)
        stored = wal_push(gb, path, name=name)
    label = name or path.rsplit("/", 1)[-1]

    def human() -> None:
        verb = "archived" if stored else "already archived (same content):"
        out_console.print(f"{verb} {label}", highlight=False)

    emit(state, {"name": label, "stored": stored}, human)


@wal.command("fetch", cls=JsonCommand)
@click.argument("name")
@click.argument("dest")
@repo_options
@click.pass_obj
def fetch(state: State, *, name: str, dest: str, repo: str, password_file: str | None) -> None:
    """Write archived WAL file NAME to DEST (restore_command: 'gocdbackup wal fetch %f %p
    ...'); exits 1 when NAME is not archived, as PostgreSQL expects at the archive's end, and
    126 on any other error (the repository unreachable or damaged), which makes PostgreSQL
    abort the recovery instead of taking it for the archive's end."""
    try:
        gb = open_repo(state, repo, password_file)
        size = wal_fetch(gb, name, dest)
    except WalMissing as exc:
        fail(state, exc)  # exit 1: the archive's end, as PostgreSQL expects
    except click.ClickException:
        raise
    except Exception as exc:
        fail(state, exc, EXIT_ABORT_RECOVERY)

    def human() -> None:
        out_console.print(f"restored {name} ({size:,} bytes)", highlight=False)

    emit(state, {"name": name, "size": size}, human)


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
