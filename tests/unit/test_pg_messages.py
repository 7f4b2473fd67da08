"""pg_dump/pg_restore stderr as one line per message, and ToolFailed built from them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gocdbackup.drivers.postgres.tools import one_line, tool_messages
from gocdbackup.errors import ToolFailed

PG_DUMP_STDERR = (
    "pg_dump: warning: there are circular foreign-key constraints on this table:\n"
    "pg_dump: detail: jobs\n"
    'pg_dump: error: query failed: ERROR:  permission denied for table "secrets"\n'
    "pg_dump: detail: Query was: LOCK TABLE public.secrets IN ACCESS SHARE MODE\n"
)

PG_RESTORE_STDERR = (
    'pg_restore: error: could not execute query: ERROR:  relation "runs" already exists\n'
    "Command was: CREATE TABLE public.runs (\n"
    "    id uuid NOT NULL,\n"
    "\tstatus text\n"
    ");\n"
)


def test_each_message_is_one_line_without_the_program_name() -> None:
    assert tool_messages("pg_dump", PG_DUMP_STDERR) == [
        "warning: there are circular foreign-key constraints on this table:",
        "detail: jobs",
        'error: query failed: ERROR: permission denied for table "secrets"',
        "detail: Query was: LOCK TABLE public.secrets IN ACCESS SHARE MODE",
    ]


def test_continuation_lines_join_their_message() -> None:
    assert tool_messages("pg_restore", PG_RESTORE_STDERR) == [
        'error: could not execute query: ERROR: relation "runs" already exists'
        " Command was: CREATE TABLE public.runs ( id uuid NOT NULL, status text );"
    ]


def test_libpq_connection_message_loses_its_tab() -> None:
    stderr = (
        'pg_dump: error: connection to server at "127.0.0.1", port 1 failed: Connection refused\n'
        "\tIs the server running on that host and accepting TCP/IP connections?\n"
    )
    (message,) = tool_messages("pg_dump", stderr)
    assert message == (
        'error: connection to server at "127.0.0.1", port 1 failed: Connection refused'
        " Is the server running on that host and accepting TCP/IP connections?"
    )
    err = ToolFailed("pg_dump", 1, stderr, messages=[message])
    assert str(err) == f"pg_dump exited 1: {message}"
    assert err.stderr_tail == stderr


def test_words_in_another_language_are_kept_as_they_are() -> None:
    stderr = "pg_dump: Fehler: Anfrage fehlgeschlagen: FEHLER:  keine Berechtigung\n"
    assert tool_messages("pg_dump", stderr) == [
        "Fehler: Anfrage fehlgeschlagen: FEHLER: keine Berechtigung"
    ]


def test_colours_and_huge_messages_are_tamed() -> None:
    stderr = "\x1b[01mpg_dump: \x1b[0m\x1b[01;31merror: \x1b[0mboom " + "x" * 1000 + "\n"
    (message,) = tool_messages("pg_dump", stderr)
    assert message.startswith("error: boom ")
    assert len(message) <= 300
    assert message.endswith("…")


def test_only_the_last_messages_are_kept() -> None:
    stderr = "".join(f"pg_restore: error: number {i}\n" for i in range(25))
    kept = tool_messages("pg_restore", stderr)
    assert kept[0] == "error: number 20"
    assert kept[-1] == "error: number 24"


def test_no_messages_keeps_the_short_form() -> None:
    assert tool_messages("pg_dump", "") == []
    assert str(ToolFailed("pg_dump", -9, "", messages=[])) == "pg_dump was killed"
    two = ToolFailed("pg_dump", 1, "", messages=["error: a", "detail: b"])
    assert str(two) == "pg_dump exited 1: error: a; detail: b"
    assert two.messages == ("error: a", "detail: b")


@given(st.text())
def test_messages_are_always_single_lines(stderr: str) -> None:
    for message in tool_messages("pg_dump", stderr):
        assert message == one_line(message)
        assert message
