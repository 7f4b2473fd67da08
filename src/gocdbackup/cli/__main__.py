"""``python -m gocdbackup.cli ARGS``: the same as ``gocdbackup ARGS``."""

from gocdbackup.cli.entry import run

if __name__ == "__main__":  # pragma: no branch - only ever run as a module
    run()
