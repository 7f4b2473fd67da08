"""The whole ``gocdbackup`` command tree: every command and group, added here to the
top-level group of :mod:`~gocdbackup.cli.root` (the command modules import only
:mod:`~gocdbackup.cli.options`, :mod:`~gocdbackup.cli.flags` and
:mod:`~gocdbackup.cli.common`, never this module nor each other)."""

from __future__ import annotations

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
    shard,
    store,
    wal,
)
from gocdbackup.cli import sandbox as sandbox_cli
from gocdbackup.cli.root import main

for _command in (
    # backups: write them, read them, keep them
    backup.init,
    backup.backup,
    shard.shard,
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

__all__ = ["main"]
