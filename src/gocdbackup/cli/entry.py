"""The console script (``gocdbackup``) and ``python -m gocdbackup.cli``.  PostgreSQL runs
``wal push`` and ``wal fetch`` once per WAL segment: those get a command tree of their own,
which loads the repository and the store only (a fraction of the whole tree's start-up);
everything else runs the whole tree (:mod:`gocdbackup.cli.app`)."""

from __future__ import annotations

import sys

_HOOKS = (["wal", "push"], ["wal", "fetch"])


def run() -> None:
    if sys.argv[1:3] in _HOOKS:
        from gocdbackup.cli.root import main  # noqa: PLC0415 - only what the hooks need
        from gocdbackup.cli.wal_hooks import wal  # noqa: PLC0415

        main.add_command(wal)
        main()
        return
    from gocdbackup.cli.app import main as everything  # noqa: PLC0415

    everything()
