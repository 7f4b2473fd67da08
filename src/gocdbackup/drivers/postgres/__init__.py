"""PostgreSQL: :class:`PostgresServer` (the generic :class:`~gocdbackup.ports.Postgres` port:
snapshots, pg_dump, pg_restore, create/inspect/swap/drop) in :mod:`.server` and
:mod:`.snapshot`; :class:`GocdnextTables` (the :class:`~gocdbackup.ports.GocdnextData` port,
the one module holding gocdnext's SQL) in :mod:`.gocdnext`; psycopg's errors translated in
:mod:`.errors`; the command-line tools in :mod:`.tools`."""

from gocdbackup.drivers.postgres.gocdnext import GocdnextTables, goose_version
from gocdbackup.drivers.postgres.server import PostgresServer

__all__ = ["GocdnextTables", "PostgresServer", "goose_version"]
