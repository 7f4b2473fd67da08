"""The ``gocdbackup`` command line (click + rich): the only part of the package that prints,
exits or configures logging.  :data:`main` is the console script's entry point; the command
tree is put together in :mod:`gocdbackup.cli.app`."""

from gocdbackup.cli.app import main

__all__ = ["main"]
