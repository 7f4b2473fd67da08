"""``gocdbackup wal push|fetch``: what PostgreSQL runs once per WAL segment, as
``archive_command`` and ``restore_command``.  Light on purpose: with
:mod:`gocdbackup.cli.entry` a process loads only these, the repository and the store (the
``wal`` group's other commands are added by :mod:`gocdbackup.cli.wal`)."""

from __future__ import annotations

import click

from gocdbackup._wal_hooks import fetch_file, open_repository, push_file
from gocdbackup.cli.common import JsonCommand, State, emit, fail, handle_errors, out_console
from gocdbackup.cli.flags import repo_options
from gocdbackup.context import OpContext
from gocdbackup.errors import WalMissing
from gocdbackup.repository import Repository

#: what ``wal fetch`` exits with on a failure other than "not archived": above 125, which
#: PostgreSQL takes as a reason to abort recovery, not as the end of the archive
EXIT_ABORT_RECOVERY = 126


def _repository(state: State, repo: str, password_file: str | None) -> Repository:
    return open_repository(repo, password_file=password_file, storage_options=state.storage_options)


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
        stored = push_file(
            _repository(state, repo, password_file), path, ctx=OpContext(), name=name
        )
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
        size = fetch_file(_repository(state, repo, password_file), name, dest, ctx=OpContext())
    except WalMissing as exc:
        fail(state, exc)  # exit 1: the archive's end, as PostgreSQL expects
    except click.ClickException:
        raise
    except Exception as exc:
        fail(state, exc, EXIT_ABORT_RECOVERY)

    def human() -> None:
        out_console.print(f"restored {name} ({size:,} bytes)", highlight=False)

    emit(state, {"name": name, "size": size}, human)
