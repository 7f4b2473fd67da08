"""The ``gocdbackup`` command: its global options, and every command and group, added here
(the command modules import only :mod:`~gocdbackup.cli.options` and
:mod:`~gocdbackup.cli.common`, never this module nor each other)."""

from __future__ import annotations

import logging

import click
from rich.logging import RichHandler

from gocdbackup.cli import (
    backup,
    catalog,
    cleanup,
    demo,
    drill,
    k8s,
    keys,
    maintenance,
    orphans,
    restore,
    runbook,
    secrets,
    secrets_escrow,
    store,
    wal,
)
from gocdbackup.cli import sandbox as sandbox_cli
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


for _command in (
    # backups: write them, read them, keep them
    backup.init,
    backup.backup,
    catalog.list_,
    catalog.show,
    restore.restore,
    catalog.verify,
    drill.drill,
    drill.status,
    backup.copy,
    catalog.pin,
    catalog.unpin,
    # the repository's upkeep
    maintenance.retention,
    maintenance.gc,
    maintenance.unlock,
    keys.key,
    # gocdnext's application key
    secrets.secrets,
    # gocdnext on Kubernetes
    k8s.k8s,
    # point in time
    wal.wal,
    # the artefact bucket's own history
    store.store,
    store.restore_to_time_command,
    # gocdnext's database against its artefact store
    orphans.orphans,
    runbook.runbook,
    # trying it out
    demo.demo,
    sandbox_cli.sandbox,
):
    main.add_command(_command)

for _command in (
    cleanup.orphans_clean,
    cleanup.orphans_undo,
    cleanup.orphans_list,
    cleanup.orphans_purge,
):
    orphans.orphans.add_command(_command)

for _command in (
    secrets_escrow.escrow,
    secrets_escrow.recover,
    secrets_escrow.recipient,
    secrets_escrow.escrows,
):
    secrets.secrets.add_command(_command)
