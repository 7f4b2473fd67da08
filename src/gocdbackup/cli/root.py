"""The top-level ``gocdbackup`` group: its global options (``--json``, ``--debug``, ``-v``) and
logging, with no command of its own.  :mod:`gocdbackup.cli.app` adds every command to it;
:mod:`gocdbackup.cli.entry` adds only the WAL hooks when PostgreSQL runs one."""

from __future__ import annotations

import logging

import click
from rich.logging import RichHandler

from gocdbackup.cli.common import MainGroup, State, err_console


def _configure_logging(verbose: int, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    handler = RichHandler(console=err_console, show_path=False, show_time=debug)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s")
    logging.getLogger("gocdbackup").setLevel(level)


@click.group(cls=MainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("--debug", is_flag=True, help="Debug logging and tracebacks on errors.")
@click.option("-v", "--verbose", count=True, help="Log what is being done.")
@click.version_option(package_name="gocdbackup")
@click.pass_context
def main(ctx: click.Context, as_json: bool, debug: bool, verbose: int) -> None:
    """Consistent, encrypted, verifiable backups of a gocdnext installation."""
    _configure_logging(verbose, debug)
    state = ctx.ensure_object(State)
    state.as_json = state.as_json or as_json
    state.debug = debug
