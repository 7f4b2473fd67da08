"""Issue #10 item 2: databases without goose back up and restore; PostgreSQL errors read as one
line built from the server's fields and are classified by SQLSTATE, never by their words."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from gocdbackup import GocdBackup
from gocdbackup.drivers.local_server import free_port
from gocdbackup.drivers.postgres import PostgresServer
from gocdbackup.errors import (
    AuthenticationFailed,
    DatabaseNotFound,
    DatabaseUnreachable,
    GocdBackupError,
    PermissionDenied,
    PostgresError,
    ToolFailed,
)
from gocdbackup.testing import LocalPostgres
from tests.conftest import REPO_PASSWORD, clone

pytestmark = pytest.mark.integration


def _one_line(text: str) -> bool:
    return "\n" not in text and "\t" not in text and "\r" not in text


def _closed_port_dsn() -> str:
    return f"host=127.0.0.1 port={free_port()} dbname=gocdnext user=x connect_timeout=3"


def _raised(db: PostgresServer, query: str) -> GocdBackupError:
    """The gocdbackup error that running ``query`` through the driver gives."""
    with db.connect() as conn, pytest.raises(GocdBackupError) as info, db.translating():
        conn.execute(query)
    return info.value


@pytest.fixture
def gb(repo_url: str) -> GocdBackup:
    return GocdBackup.init(repo_url, password=REPO_PASSWORD, scrypt_n=2**12)


# -- databases without goose_db_version --------------------------------------------------------


def _generic_db(pg: LocalPostgres) -> str:
    name = "plain_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER gocdnext").format(sql.Identifier(name)))
    with psycopg.connect(pg.dsn(name, user="gocdnext", password="gocdnext")) as conn:
        conn.execute("CREATE TABLE things (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO things SELECT g, 'thing ' || g FROM generate_series(1, 250) g")
    return name


def _unmigrated_db(pg: LocalPostgres) -> str:
    """gocdnext's database before its first migration: created, still empty."""
    name = "fresh_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER gocdnext").format(sql.Identifier(name)))
    return name


def _gocdnext_without_goose(pg: LocalPostgres) -> str:
    name = clone(pg)
    with psycopg.connect(pg.dsn(name)) as conn:
        conn.execute("DROP TABLE goose_db_version")
    return name


@pytest.mark.parametrize(
    "make", [_generic_db, _unmigrated_db, _gocdnext_without_goose], ids=lambda f: f.__name__
)
def test_database_without_goose_backs_up_and_restores(
    pg: LocalPostgres, gb: GocdBackup, make: Callable[[LocalPostgres], str]
) -> None:
    name = make(pg)
    backup = gb.backup(pg.dsn(name))
    assert backup.point.goose_version is None
    assert "public.goose_db_version" not in backup.database.table_rows()

    report = gb.restore(backup.id, pg.dsn(name + "_back"), confirm=backup.id)
    assert report.goose_version is None
    assert report.rows_checked == sum(t.rows for t in backup.database.tables)
    assert gb.list_backups()[0].point.goose_version is None


def test_goose_table_with_no_applied_row_is_no_version(pg: LocalPostgres, gb: GocdBackup) -> None:
    name = clone(pg)
    with psycopg.connect(pg.dsn(name)) as conn:
        conn.execute("UPDATE goose_db_version SET is_applied = false")
    backup = gb.backup(pg.dsn(name))
    assert backup.point.goose_version is None
    assert gb.restore(backup.id, pg.dsn(name + "_back"), confirm=backup.id).goose_version is None


# -- connection failures -----------------------------------------------------------------------


def test_closed_port_is_one_readable_line_with_libpq_reason(gb: GocdBackup) -> None:
    dsn = _closed_port_dsn()
    with pytest.raises(DatabaseUnreachable) as info:
        gb.backup(dsn)
    message = str(info.value)
    assert _one_line(message)
    assert message.startswith("cannot connect to PostgreSQL at 127.0.0.1:")
    assert "Connection refused" in message  # libpq's reason is kept, not cut off
    assert "Is the server running" in message
    assert info.value.sqlstate is None
    assert info.value.code == "database_unreachable"


def test_connection_refusals_carry_their_sqlstate(pg: LocalPostgres) -> None:
    with pytest.raises(AuthenticationFailed) as auth:
        PostgresServer(pg.dsn("postgres", password="not-the-password-7f3a")).connect()
    assert auth.value.sqlstate == "28P01"
    assert "not-the-password-7f3a" not in str(auth.value)
    assert _one_line(str(auth.value))

    with pytest.raises(DatabaseNotFound) as missing:
        PostgresServer(pg.dsn("no_such_db_for_errors")).connect()
    assert missing.value.sqlstate == "3D000"
    assert _one_line(str(missing.value))
    assert str(missing.value).startswith("database 'no_such_db_for_errors' does not exist at")


def test_missing_password_is_an_authentication_failure(
    pg: LocalPostgres, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    dsn = f"host=127.0.0.1 port={pg.port} dbname=postgres user=postgres"
    with pytest.raises(AuthenticationFailed, match="rejected the credentials") as info:
        PostgresServer(dsn).connect()
    assert _one_line(str(info.value))


# -- server errors -----------------------------------------------------------------------------


def test_multi_line_server_error_reads_as_its_primary_message(pg: LocalPostgres) -> None:
    db = PostgresServer(pg.dsn())
    err = _raised(db, "SELEC 1")
    assert type(err) is PostgresError
    assert err.sqlstate == "42601"
    assert str(err) == (
        f'PostgreSQL at 127.0.0.1:{pg.port}/postgres: syntax error at or near "SELEC"'
        " (SQLSTATE 42601)"
    )


def test_missing_relation_is_not_reported_as_a_caret(pg: LocalPostgres) -> None:
    """The symptom of the issue: ``error: PostgreSQL at …/big:        ^``."""
    db = PostgresServer(pg.dsn())
    err = _raised(db, "SELECT max(version_id) FROM goose_db_version WHERE is_applied")
    assert str(err).endswith(': relation "goose_db_version" does not exist (SQLSTATE 42P01)')
    assert "^" not in str(err)
    assert "LINE 1" not in str(err)


def test_detail_and_hint_join_the_primary_message_on_one_line(pg: LocalPostgres) -> None:
    db = PostgresServer(pg.dsn())
    err = _raised(
        db,
        "DO $$ BEGIN RAISE EXCEPTION 'the primary' USING"
        " DETAIL = E'first line\\n\\tsecond line', HINT = 'try again'; END $$",
    )
    assert str(err) == (
        f"PostgreSQL at 127.0.0.1:{pg.port}/postgres: the primary; detail: first line"
        " second line; hint: try again (SQLSTATE P0001)"
    )


def test_insufficient_privilege_is_permission_denied(pg: LocalPostgres) -> None:
    app = PostgresServer(pg.dsn("postgres", user="gocdnext", password="gocdnext"))
    with pytest.raises(PermissionDenied) as info:
        app.create("never_" + uuid.uuid4().hex[:6], owner=None, encoding="UTF8")
    assert info.value.sqlstate == "42501"
    assert info.value.code == "permission_denied"
    assert _one_line(str(info.value))


# -- classification reads the SQLSTATE, never the words -----------------------------------------


@pytest.mark.parametrize(
    ("sqlstate", "text", "expected"),
    [
        # English words of other errors, under SQLSTATEs that say otherwise
        ("42P01", 'password authentication failed for user "x"', PostgresError),
        ("22012", 'database "gocdnext" does not exist', PostgresError),
        ("XX000", "could not connect: no password supplied", PostgresError),
        # the right SQLSTATEs, in words the old text matching could not read
        ("28P01", "Passwort-Authentifizierung fehlgeschlagen", AuthenticationFailed),
        ("28000", "kein pg_hba.conf-Eintrag", AuthenticationFailed),
        ("3D000", "Datenbank »gocdnext« existiert nicht", DatabaseNotFound),
        ("42501", "keine Berechtigung für Tabelle artifacts", PermissionDenied),
        ("57P01", "Verbindung wird wegen Administratorbefehl abgebrochen", DatabaseUnreachable),
        ("08006", "Verbindungsfehler", DatabaseUnreachable),
    ],
)
def test_classification_depends_on_sqlstate_only(
    pg: LocalPostgres, sqlstate: str, text: str, expected: type[GocdBackupError]
) -> None:
    db = PostgresServer(pg.dsn())
    literal = text.replace("'", "''")
    err = _raised(
        db, f"DO $$ BEGIN RAISE EXCEPTION '{literal}' USING ERRCODE = '{sqlstate}'; END $$"
    )
    assert type(err) is expected
    assert err.sqlstate == sqlstate  # type: ignore[attr-defined]
    assert text in str(err)
    assert str(err).endswith(f"(SQLSTATE {sqlstate})")


# -- a server that speaks German ---------------------------------------------------------------


def _german_capable_bindir() -> tuple[str, Path] | None:
    """A system PostgreSQL whose server has German messages, and the locale sources to build
    de_DE.UTF-8 without touching the system (LOCPATH)."""
    if not shutil.which("localedef") or not Path("/usr/share/i18n/locales/de_DE").exists():
        return None
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if not (bindir / "initdb").exists() or not (bindir / "pg_config").exists():
            continue
        localedir = subprocess.run(
            [str(bindir / "pg_config"), "--localedir"], capture_output=True, text=True
        ).stdout.strip()
        major = bindir.parent.name
        if localedir and Path(localedir, "de", "LC_MESSAGES", f"postgres-{major}.mo").exists():
            return str(bindir), Path(localedir)
    return None


@pytest.fixture(scope="module")
def german_pg() -> Iterator[LocalPostgres]:
    found = _german_capable_bindir()
    if found is None:
        pytest.skip("no PostgreSQL server with German messages and no de_DE locale sources")
    bindir, _ = found
    locales = Path(tempfile.mkdtemp(prefix="gocdbackup-locale-"))
    try:
        locales.chmod(0o755)  # the server runs as an unprivileged user
        built = subprocess.run(
            ["localedef", "-i", "de_DE", "-f", "UTF-8", str(locales / "de_DE.UTF-8")],
            capture_output=True,
        )
        if built.returncode != 0:
            pytest.skip(f"cannot build de_DE.UTF-8: {built.stderr!r}")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("LOCPATH", str(locales))  # read by the server when it starts
            server = LocalPostgres.start(
                bindir=bindir, password="german-pw", settings={"lc_messages": "de_DE.UTF-8"}
            )
        with server:
            with psycopg.connect(server.dsn()) as conn:
                try:
                    conn.execute("SELECT 1/0")
                except psycopg.errors.DivisionByZero as exc:
                    if exc.diag.message_primary == "division by zero":
                        pytest.skip("the server did not switch to German messages")
            yield server
    finally:
        shutil.rmtree(locales, ignore_errors=True)


def test_german_server_errors_are_classified_alike(german_pg: LocalPostgres) -> None:
    with pytest.raises(AuthenticationFailed) as auth:
        PostgresServer(german_pg.dsn("postgres", password="falsch")).connect()
    assert auth.value.sqlstate == "28P01"
    assert "Passwort" in str(auth.value)  # the server's own words are shown, not read

    with pytest.raises(DatabaseNotFound) as missing:
        PostgresServer(german_pg.dsn("gibt_es_nicht")).connect()
    assert missing.value.sqlstate == "3D000"
    assert "existiert nicht" in str(missing.value)

    db = PostgresServer(german_pg.dsn())
    err = _raised(db, "SELEC 1")
    assert type(err) is PostgresError
    assert str(err).endswith("(SQLSTATE 42601)")
    assert "SELEC" in str(err)
    assert _one_line(str(err))


def test_german_server_database_without_goose_backs_up(
    german_pg: LocalPostgres, tmp_path: Path
) -> None:
    with psycopg.connect(german_pg.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE ohne_goose")
    with psycopg.connect(german_pg.dsn("ohne_goose")) as conn:
        conn.execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g")
    gb = GocdBackup.init(f"file://{tmp_path}/repo", password=REPO_PASSWORD, scrypt_n=2**12)
    backup = gb.backup(german_pg.dsn("ohne_goose"))
    assert backup.point.goose_version is None
    assert backup.database.table_rows() == {"public.t": 10}


# -- pg_dump's messages ------------------------------------------------------------------------


def test_pg_dump_failure_is_one_line_per_message(pg: LocalPostgres, gb: GocdBackup) -> None:
    """pg_dump fails (not our own queries): a large object the role may not read."""
    name = "lo_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(pg.dsn(name)) as conn:
        conn.execute("CREATE TABLE visible (x int)")
        conn.execute("GRANT SELECT ON visible TO gocdnext")
        conn.execute("SELECT lo_from_bytea(0, 'not for gocdnext')")
    with pytest.raises(ToolFailed) as info:
        gb.backup(pg.dsn(name, user="gocdnext", password="gocdnext"))
    err = info.value
    assert err.tool == "pg_dump"
    assert _one_line(str(err))
    assert str(err).startswith("pg_dump exited 1: ")
    assert "large object" in str(err)
    assert err.messages
    assert all(_one_line(m) and not m.startswith("pg_dump: ") for m in err.messages)
    assert gb.list_backups() == []


# -- the CLI -----------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD}
    return subprocess.run(
        [sys.executable, "-m", "gocdbackup.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_json_error_for_a_closed_port(repo_url: str) -> None:
    assert _cli("init", "--repo", repo_url).returncode == 0
    proc = _cli("--json", "backup", "--repo", repo_url, "--db", _closed_port_dsn())
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "database_unreachable"
    assert _one_line(error["message"])
    assert "Connection refused" in error["message"]
    assert error["message"].startswith("cannot connect to PostgreSQL at 127.0.0.1:")
