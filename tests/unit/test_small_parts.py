"""Small pure pieces: ids, rendering, context, password resolution, tool-output parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gocdbackup.context import CancelToken, OpContext
from gocdbackup.credentials import resolve_password
from gocdbackup.drivers.fsspec_store import redact_url
from gocdbackup.drivers.postgres.tools import major_of, only_transaction_timeout_errors
from gocdbackup.errors import Cancelled, ConfigError, ToolFailed
from gocdbackup.model import ProgressEvent, diff_tables, is_backup_id, make_backup_id
from gocdbackup.model.backup import BackupList
from gocdbackup.model.keys import check_object_key
from gocdbackup.model.render import html_table, human_bytes
from gocdbackup.ops import take_backup
from gocdbackup.repository import Repository
from gocdbackup.testing import FakeGocdnext, FakePostgres


@given(
    st.datetimes(datetime(1970, 1, 1), datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.text("0123456789abcdef", min_size=6, max_size=6),
)
def test_backup_ids_sort_by_time_and_parse(at: datetime, suffix: str) -> None:
    bid = make_backup_id(at, suffix)
    assert is_backup_id(bid)
    later = make_backup_id(at + timedelta(seconds=1), suffix)
    assert bid < later


def test_backup_id_uses_utc() -> None:
    local = datetime(2026, 11, 25, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert make_backup_id(local, "abcdef") == "20261124T233000Z-abcdef"
    with pytest.raises(ValueError, match="6 lowercase hex"):
        make_backup_id(local, "XYZ")


@given(
    st.dictionaries(st.text(max_size=5), st.integers(0, 100), max_size=8),
    st.dictionaries(st.text(max_size=5), st.integers(0, 100), max_size=8),
)
def test_diff_tables_lists_exactly_the_differences(
    expected: dict[str, int], actual: dict[str, int]
) -> None:
    diffs = diff_tables(expected, actual)
    names = [d.table for d in diffs]
    assert names == sorted(names)
    assert set(names) == {
        n for n in set(expected) | set(actual) if expected.get(n) != actual.get(n)
    }
    assert diff_tables(expected, expected) == ()


def test_table_diff_reads_like_a_sentence() -> None:
    (d,) = diff_tables({"public.runs": 3}, {})
    assert str(d) == "public.runs: expected 3 rows, found absent"


def test_html_is_escaped() -> None:
    html = html_table([{"name": "<script>alert(1)</script>", "n": 1}], caption="a & b")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "a &amp; b" in html
    assert html_table([]) == "<p>(empty)</p>"


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 2**30, "5.0 GiB")]
)
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text


def test_cancel_token() -> None:
    token = CancelToken()
    token.raise_if_cancelled()
    token.cancel("stop now")
    assert token.cancelled
    with pytest.raises(Cancelled, match="stop now"):
        OpContext(cancel=token).check()


def test_any_callable_is_a_progress_sink() -> None:
    seen: list[ProgressEvent] = []
    OpContext(progress=seen.append).report("dump", 5, 10)
    assert seen == [ProgressEvent(phase="dump", done=5, total=10)]
    assert seen[0].fraction == 0.5
    assert ProgressEvent(phase="x").fraction is None


def test_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOCDBACKUP_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="GOCDBACKUP_PASSWORD"):
        resolve_password(None, None)
    f = tmp_path / "p"
    f.write_bytes(b"from-file\r\n")
    assert resolve_password(None, f) == b"from-file"
    with pytest.raises(ConfigError, match="cannot read the password file"):
        resolve_password(None, tmp_path / "missing")
    monkeypatch.setenv("GOCDBACKUP_PASSWORD", "from-env")
    assert resolve_password(None, None) == b"from-env"
    assert resolve_password("explicit", f) == b"explicit"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("s3://AKIA:topsecret@bucket/p", "s3://bucket/p"),
        ("file:///srv/backups", "file:///srv/backups"),
        ("gs://Bucket/x", "gs://Bucket/x"),
    ],
)
def test_urls_are_shown_without_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "a/../../b", "a/.."])
def test_unsafe_keys(key: str) -> None:
    with pytest.raises(ConfigError, match="unsafe object key"):
        check_object_key(key)


def test_major_versions() -> None:
    assert major_of("18.1") == 18
    assert major_of("9.6.24") == 9
    with pytest.raises(ConfigError):
        major_of("banana")


def test_only_the_transaction_timeout_error_is_tolerated() -> None:
    harmless = (
        'pg_restore: error: could not execute query: ERROR:  unrecognized configuration parameter "transaction_timeout"\n'
        "Command was: SET transaction_timeout = 0;\n"
        "pg_restore: warning: errors ignored on restore: 1\n"
    )
    assert only_transaction_timeout_errors(harmless)
    real = (
        harmless
        + 'pg_restore: error: could not execute query: ERROR:  relation "x" already exists\n'
    )
    assert not only_transaction_timeout_errors(real)
    assert not only_transaction_timeout_errors("")


def test_tool_failed_message_has_the_last_stderr_line() -> None:
    err = ToolFailed("pg_dump", 1, "line one\npg_dump: error: connection lost\n")
    assert str(err) == "pg_dump exited 1: pg_dump: error: connection lost"
    assert str(ToolFailed("pg_dump", -9, "")) == "pg_dump was killed"


def test_backup_values_render_for_notebooks(
    repo: Repository, db: FakePostgres, ctx: OpContext
) -> None:
    backup = take_backup(repo, db, ctx=ctx, label="<b>nightly</b>")
    assert repr(backup).startswith(f"<BackupSet {backup.id} done 'gocdnext'")
    html = backup._repr_html_()
    assert backup.id in html
    assert "<b>nightly</b>" not in html
    assert backup.table_rows()[0] == {"table": "public.artifacts", "rows": 40}
    listing = BackupList([backup])
    assert listing.rows()[0]["id"] == backup.id
    assert backup.id in listing._repr_html_()


def _fake_scan_db() -> FakeGocdnext:
    from gocdbackup.model.orphans import RowRef
    from gocdbackup.testing import FakeClock, FakeDatabaseContents

    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        RowRef(
            key="run/b", table="artifacts", row_id="a1", status="ready", size_bytes=5, stamped_at=at
        ),
        RowRef(
            key="cache/B",
            table="caches",
            row_id="c1",
            status="pending",
            size_bytes=0,
            stamped_at=at,
        ),
        RowRef(key="logs/a.log.gz", table="job_runs", row_id="j1", status="ready", stamped_at=at),
        RowRef(key="run/a-b", table="artifacts", row_id="a2", status="pending", stamped_at=at),
        RowRef(key="run/a/b", table="artifacts", row_id="a3", status="deleting", stamped_at=at),
    ]
    return FakeGocdnext(
        FakePostgres(
            "gocdnext",
            {"gocdnext": FakeDatabaseContents(rows=rows), "other": FakeDatabaseContents()},
        ),
        clock=FakeClock(datetime(2026, 11, 20, tzinfo=UTC)),
    )


def test_fake_database_streams_object_rows_in_key_order() -> None:
    db = _fake_scan_db()
    rows = list(db.server.databases["gocdnext"].rows)
    keys = [r.key for r in db.object_rows()]
    assert keys == ["cache/B", "logs/a.log.gz", "run/a-b", "run/a/b", "run/b"]
    assert keys == sorted(r.key for r in rows)
    assert [r.key for r in db.object_rows("run/a-b")] == ["run/a/b", "run/b"]
    assert [r.key for r in db.object_rows("run/a")] == ["run/a-b", "run/a/b", "run/b"]
    assert list(db.object_rows("run/b")) == []
    assert db.source_id() == "fake://gocdnext" == db.source_id()
    assert FakeGocdnext(FakePostgres("other", db.server.databases)).source_id() != db.source_id()


def test_fake_database_retires_only_rows_still_as_read() -> None:
    from attrs import evolve

    db = _fake_scan_db()
    ready, cache, archive, pending, _ = db.server.databases["gocdnext"].rows
    stale = evolve(pending, status="ready")  # read before a change: no longer matches
    ghost = evolve(ready, row_id="nope")

    assert db.retire_rows(iter([ready, cache, archive, stale, ghost])) == 3

    now = {(r.table, r.row_id): r for r in db.object_rows()}
    assert set(now) == {("artifacts", "a1"), ("artifacts", "a2"), ("artifacts", "a3")}
    retired = now[("artifacts", "a1")]
    assert retired.status == "deleting"
    assert retired.stamped_at == datetime(2026, 11, 20, tzinfo=UTC)  # the fake's clock
    assert now[("artifacts", "a2")] == pending
    assert db.retire_rows([]) == 0
    assert db.retire_rows([ready]) == 0  # already deleting
    assert db.server.databases["other"].rows == []


def test_memory_store_scan_and_stat() -> None:
    from gocdbackup.testing import MemoryStore

    store = MemoryStore(versioned=True)
    for key in ("a/b", "a-b", "a0", "a.b", "é", "b/c.part"):
        store.write(key, key.encode())
    store.write("a/b", b"again")
    assert [i.key for i in store.scan()] == ["a-b", "a.b", "a/b", "a0", "b/c.part", "é"]
    assert [i.key for i in store.scan("a")] == ["a-b", "a.b", "a/b", "a0"]
    assert [i.key for i in store.scan("a", start_after="a.b")] == ["a/b", "a0"]
    assert [i.key for i in store.scan(start_after="a/")] == ["a/b", "a0", "b/c.part", "é"]
    assert list(store.scan(start_after="é")) == []
    assert store.scans == [("", ""), ("a", ""), ("a", "a.b"), ("", "a/"), ("", "é")]
    assert store.lists == []
    (listed,) = [i for i in store.scan() if i.key == "a/b"]
    info = store.stat("a/b")
    assert info == listed
    assert info is not None
    assert info.size_bytes == 5
    assert info.version == store.version_of("a/b")
    assert store.stat("a") is None
    assert store.stat("missing") is None
    with pytest.raises(ConfigError):
        store.stat("../x")


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-25T18:00:01.123Z",
        "2026-11-25T18:00:01Z",
        "2026-11-25T18:00:01+02:00",
        "Wed, 25 Nov 2026 18:00:01 GMT",
        "1795888801",
        1795888801,
    ],
)
def test_s3_timestamps_parse_as_botocore_parses_them(value: object) -> None:
    from botocore.utils import parse_timestamp

    from gocdbackup.drivers.fsspec_backends import _parse_timestamp

    ours, theirs = _parse_timestamp(value), parse_timestamp(value)
    assert ours == theirs
    assert ours.utcoffset() is not None
