"""psycopg errors as gocdbackup errors: classified by SQLSTATE alone (never by the message's
words, which follow the server's ``lc_messages``), reported on one line built from the server's
fields, and never carrying a password."""

from __future__ import annotations

import os
from typing import Any

import psycopg

from gocdbackup.drivers.postgres.tools import clip, one_line
from gocdbackup.errors import (
    AuthenticationFailed,
    DatabaseNotFound,
    DatabaseUnreachable,
    GocdBackupError,
    PermissionDenied,
    PostgresError,
)

_DETAIL_CHARS = 300

# SQLSTATEs (never message texts, which follow the server's lc_messages) decide the error class
_UNREACHABLE_SQLSTATES = frozenset(
    {"57P01", "57P02", "57P03", "57P04", "57P05"}  # shut down, starting, dropped, idle timeout
)


def describe_target(params: dict[str, Any]) -> str:
    """``host:port/db`` without user or password, for messages."""
    host = params.get("host") or os.environ.get("PGHOST") or "local socket"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    return f"{host}:{port}/{params.get('dbname') or '?'}"


def _sqlstate_class(
    sqlstate: str | None, *, connecting: bool
) -> type[PostgresError] | type[DatabaseNotFound]:
    if sqlstate is not None:
        if sqlstate.startswith("28"):  # invalid authorization specification
            return AuthenticationFailed
        if sqlstate == "3D000":  # invalid catalog name
            return DatabaseNotFound
        if sqlstate == "42501":  # insufficient privilege
            return PermissionDenied
        if sqlstate.startswith("08") or sqlstate in _UNREACHABLE_SQLSTATES:
            return DatabaseUnreachable
    return DatabaseUnreachable if connecting else PostgresError


def _server_text(exc: psycopg.Error) -> str:
    """The server's report from its fields: primary message, detail and hint, one line; never
    the statement excerpt with its caret that psycopg's ``str()`` ends with."""
    diag = exc.diag
    primary = diag.message_primary or next(
        (line for line in str(exc).splitlines() if line.strip()), type(exc).__name__
    )
    parts = [one_line(primary)]
    for label, text in (("detail", diag.message_detail), ("hint", diag.message_hint)):
        if text:
            parts.append(f"{label}: {clip(one_line(text), _DETAIL_CHARS)}")
    return "; ".join(parts)


def _client_text(exc: psycopg.Error) -> str:
    """psycopg's (libpq's) text for an error no server reported, as one line."""
    text = one_line(str(exc)) or type(exc).__name__
    # psycopg's own prefix (not libpq's, not translated): libpq's text says it better
    for prefix in ("connection failed: ", "connection is bad: "):
        text = text.removeprefix(prefix)
    return text


def translate(
    exc: psycopg.Error,
    params: dict[str, Any],
    *,
    connecting: bool = False,
    sqlstate: str | None = None,
) -> GocdBackupError:
    """A psycopg error as a gocdbackup error, classified by SQLSTATE alone.

    ``connecting``: ``exc`` is the failure of a connection attempt. ``sqlstate``: the one the
    server refused that attempt with, when ``exc`` lacks it (psycopg reports connection
    failures without one). The message is one line and never carries a password."""
    where = describe_target(params)
    reported = exc.sqlstate or sqlstate
    code = reported
    if connecting and code is None and needs_password(exc):
        code = "28000"  # the server asked for a password and the client had none to give
    cls = _sqlstate_class(code, connecting=connecting)
    if exc.sqlstate is not None:
        reason = f"{_server_text(exc)} (SQLSTATE {exc.sqlstate})"
    else:
        reason = _client_text(exc) + (f" (SQLSTATE {reported})" if reported else "")
    if cls is AuthenticationFailed and connecting:
        message = f"PostgreSQL at {where} rejected the credentials: {reason}"
    elif cls is DatabaseNotFound and connecting:
        message = f"database {params.get('dbname')!r} does not exist at {where}: {reason}"
    elif cls is DatabaseUnreachable:
        how = "cannot connect to" if connecting else "lost the connection to"
        message = f"{how} PostgreSQL at {where}: {reason}"
    else:
        message = f"PostgreSQL at {where}: {reason}"
    err = cls(message)
    err.sqlstate = reported
    return err


def needs_password(exc: psycopg.Error) -> bool:
    """Whether the failed attempt was asked for a password it did not have (libpq's flag)."""
    return exc.pgconn is not None and bool(exc.pgconn.needs_password)


def connect_timeout(params: dict[str, Any]) -> float:
    """The connection parameters' ``connect_timeout`` in seconds (10 where unset or unreadable),
    for asking the server again why it refused."""
    try:
        return float(params.get("connect_timeout") or 0) or 10.0
    except ValueError:
        return 10.0
