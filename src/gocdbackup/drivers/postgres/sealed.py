"""gocdnext's SQL for the values sealed with its application key: which encrypted columns a
database has, every value of them streamed in batches, and compare-and-set re-sealing.  What
the columns *are* is in :mod:`gocdbackup.gocdnext.secrets`; the rest of gocdnext's SQL is in
:mod:`gocdbackup.drivers.postgres.gocdnext`."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Sequence
from itertools import islice
from typing import Any, cast

import psycopg
from psycopg import sql
from psycopg.rows import scalar_row, tuple_row

from gocdbackup.drivers.postgres.server import PostgresServer
from gocdbackup.errors import ConfigError
from gocdbackup.gocdnext.secrets import ENCRYPTED_COLUMNS, EncryptedColumn, Form
from gocdbackup.model.secrets import Reseal, SealedBatch, column_of

# the encrypted columns this database has (an older gocdnext lacks some); pg_attribute, not
# information_schema, which hides columns the role may not read (reading them must fail loudly)
_PRESENT_SQL = """
SELECT w.t || '.' || w.c FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS w(t, c, n)
WHERE EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = to_regclass(quote_ident(w.t))
              AND a.attname = w.c AND a.attnum > 0 AND NOT a.attisdropped)
ORDER BY w.n
"""
# one blob per row, in the table's physical order (no sort, no index walk: a check needs no
# order, and names its failing rows sorted); a map's entries (a map that is not a JSON object
# comes as one entry "", its text as the value: unopenable, so a check reports it)
_SEALED_SQL = {
    Form.BYTEA: "SELECT t.{col}, t.{key}::text FROM {table} t",
    Form.HEX_MAP: """
SELECT t.{key}::text, e.k, e.v FROM {table} t CROSS JOIN LATERAL (
    SELECT key, value FROM jsonb_each_text(
        CASE WHEN jsonb_typeof(t.{col}) = 'object' THEN t.{col} END)
    UNION ALL SELECT '', t.{col} #>> '{{}}' WHERE jsonb_typeof(t.{col}) NOT IN ('object', 'null')
) AS e(k, v)
""",
}
# the blobs alone (a check: naming the row of each value costs as much as opening it)
_BLOBS_SQL = "SELECT t.{col} FROM {table} t"
# the rows holding some blobs (the few a check found failing), in one hash join
_HOLDING_SQL = """
SELECT DISTINCT t.{col}, t.{key}::text
FROM {table} t JOIN unnest(%s::bytea[]) AS b(v) ON t.{col} = b.v
"""
#: rows per batch, and per chunk of the result stream (libpq ≥ 17 sends rows in chunks; older
#: ones row by row): memory stays bounded by one batch
BATCH_ROWS = 5000
_CHUNKED_LIBPQ = 170000
# compare-and-set: only where the row (the map entry) still holds the old blob (hex: any case)
_RESEAL_SQL = {
    Form.BYTEA: "UPDATE {table} SET {col} = %(new)s WHERE {key} = %(key)s AND {col} = %(old)s",
    Form.HEX_MAP: """
UPDATE {table} SET {col} = jsonb_set({col}, ARRAY[%(entry)s::text], to_jsonb(%(new)s::text))
WHERE {key} = %(key)s AND lower({col} ->> %(entry)s::text) = %(old)s
""",
}
_BY_NAME = {c.name: c for c in ENCRYPTED_COLUMNS}
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


def _column_sql(template: str, column: EncryptedColumn) -> sql.Composed:
    return sql.SQL(template).format(
        table=sql.Identifier(column.table),
        col=sql.Identifier(column.column),
        key=sql.Identifier(column.key_column),
    )


def present_columns(conn: psycopg.Connection[Any], columns: Sequence[EncryptedColumn]) -> list[str]:
    """The names of ``columns`` this database has, in the order given."""
    tables, names = [c.table for c in columns], [c.column for c in columns]
    return [str(r[0]) for r in conn.execute(_PRESENT_SQL, (tables, names)).fetchall()]


def _unhex(text: str | None) -> bytes | None:
    """A map entry's blob: its hex decoded, or (not hex) its raw text, which cannot open."""
    if text is None:
        return None
    return bytes.fromhex(text) if _HEX.fullmatch(text) else text.encode()


def _batch(column: EncryptedColumn, rows: list[Any], keys: bool) -> SealedBatch:
    if column.form is Form.HEX_MAP:
        return SealedBatch(
            column=column.name,
            row_keys=[r[0] for r in rows],
            entries=[r[1] for r in rows],
            blobs=[_unhex(r[2]) for r in rows],
        )
    if not keys:
        return SealedBatch(column=column.name, blobs=rows)
    blobs, row_keys = zip(*rows, strict=True)
    return SealedBatch(column=column.name, row_keys=row_keys, blobs=blobs)


def sealed_batches(
    server: PostgresServer, columns: Sequence[EncryptedColumn], *, keys: bool = True
) -> Iterator[SealedBatch]:
    """Every value of the present ``columns``, a batch at a time, in one REPEATABLE READ
    snapshot; without ``keys``, a plain column's batches carry the blobs alone.  Each column's
    rows stream from one query (no cursor round trips), so reading keeps pace with
    decrypting; leaving early (also GeneratorExit) cancels it and ends the transaction."""
    chunk = BATCH_ROWS if psycopg.pq.version() >= _CHUNKED_LIBPQ else 1
    with server.reading() as conn, server.translating():
        present = set(present_columns(conn, columns))
        for column in (c for c in columns if c.name in present):
            keyed = keys or column.form is Form.HEX_MAP
            with conn.cursor(binary=True, row_factory=tuple_row if keyed else scalar_row) as cur:
                query = _column_sql(_SEALED_SQL[column.form] if keyed else _BLOBS_SQL, column)
                rows = cur.stream(query, size=chunk)
                try:
                    while batch := list(islice(rows, BATCH_ROWS)):
                        yield _batch(column, batch, keyed)
                finally:  # a stream left early is cancelled here, before the cursor closes
                    cast("Generator[Any, None, None]", rows).close()


def rows_holding(
    server: PostgresServer, column: EncryptedColumn, blobs: Sequence[bytes]
) -> dict[bytes, list[str]]:
    """For each of ``blobs``, the keys of the rows of ``column`` (a plain one) holding it
    now."""
    if column.form is Form.HEX_MAP:
        raise ConfigError(f"{column.name} is read with its row keys: nothing to look up")
    found: dict[bytes, list[str]] = {}
    if not blobs:
        return found
    with server.connect() as conn, server.translating(), conn.cursor(binary=True) as cur:
        cur.execute(_column_sql(_HOLDING_SQL, column), (list(blobs),))
        for blob, key in cur:
            found.setdefault(bytes(blob), []).append(key)
    return found


def _reseal_params(changes: Sequence[Reseal]) -> dict[str, list[dict[str, Any]]]:
    """Each column's statement parameters, checked before anything is written."""
    out: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        value, column = change.value, column_of(change)
        old = value.blob or b""  # column_of refused a change without one
        hexed = column.form is Form.HEX_MAP
        out.setdefault(column.name, []).append(
            {
                "key": value.row_key,
                "entry": value.entry,
                "old": old.hex() if hexed else old,
                "new": change.blob.hex() if hexed else change.blob,
            }
        )
    return out


def reseal(server: PostgresServer, changes: Sequence[Reseal]) -> int:
    """In one transaction, replace each value by its new blob where the row (the map entry)
    still holds the old one; how many were replaced."""
    params = _reseal_params(changes)
    if not params:
        return 0
    changed = 0
    # one transaction: the connection's context commits on success, rolls back on error;
    # executemany pipelines the statements, which still run in order (each sees the map
    # entries changed before it), and its rowcount is their total
    with (
        server.connect(autocommit=False) as conn,
        server.translating(),
        conn.cursor() as cur,
    ):
        for name, rows in params.items():
            column = _BY_NAME[name]
            cur.executemany(_column_sql(_RESEAL_SQL[column.form], column), rows)
            changed += max(cur.rowcount, 0)
    return changed
