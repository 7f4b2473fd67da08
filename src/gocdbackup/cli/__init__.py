"""The ``gocdbackup`` command line (click + rich): the only part of the package that prints,
exits or configures logging.  :data:`main` is the command tree (put together in
:mod:`gocdbackup.cli.app`, imported on first use); the console script's entry point is
:func:`gocdbackup.cli.entry.run`, which serves PostgreSQL's per-segment ``wal push`` and
``wal fetch`` without loading the rest."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gocdbackup.cli.app import main


def __getattr__(name: str) -> Any:
    if name == "main":
        from gocdbackup.cli.app import main  # noqa: PLC0415 - the whole tree, on first use

        return main
    raise AttributeError(f"module 'gocdbackup.cli' has no attribute {name!r}")


__all__ = ["main"]
