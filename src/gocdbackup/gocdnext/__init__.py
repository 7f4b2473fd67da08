"""What gocdnext *is*, as pure data and pure functions: the tables and columns that reference
artefact-store objects and their states, the object key layouts, the sweeper's thresholds,
goose, the application key's cipher, where the artefact store is configured, and the Helm
chart's names.  When gocdnext adds a migration that matters to gocdbackup, this package (and
the one driver module that holds gocdnext's SQL) is what changes.

Nothing here does I/O; the only library besides the standard one is ``cryptography`` (the
cipher)."""

from gocdbackup.gocdnext.layouts import LAYOUTS, PENDING_TIMEOUT, in_layout
from gocdbackup.gocdnext.schema import GOOSE_TABLE, OBJECT_COLUMNS, ObjectColumn, Table

__all__ = [
    "GOOSE_TABLE",
    "LAYOUTS",
    "OBJECT_COLUMNS",
    "PENDING_TIMEOUT",
    "ObjectColumn",
    "Table",
    "in_layout",
]
