"""Restoring table by table on a real PostgreSQL with real pg_dump/pg_restore: every backup
records where each table's rows lie, a restore loads them ``jobs`` at a time (a large table
cut into pieces) between the schema and the indexes, and the result is the same database a
restore as one stream gives."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import attrs
import psycopg
import pytest

from gocdbackup import GocdBackup
from gocdbackup.drivers.postgres import PostgresServer
from gocdbackup.errors import Cancelled, ConfigError, IntegrityError
from gocdbackup.model import Manifest, ProgressEvent
from gocdbackup.model.archive_layout import LayoutScanner, frame_boundary
from gocdbackup.model.pg_archive import read_toc
from gocdbackup.ops.backup import DUMP_KIND
from gocdbackup.ops.table_restore import load_by_tables
from gocdbackup.repository import read_range
from gocdbackup.repository.repo import blob_key
from gocdbackup.testing import LocalPostgres
from tests.conftest import REPO_PASSWORD, clone

pytestmark = pytest.mark.integration


def _fingerprint(dsn: str) -> dict[str, object]:
    """Every table's rows (an order-free digest), every index and constraint, every
    sequence's value."""
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'"
        ).fetchall()
        out: dict[str, object] = {}
        for schema, name in tables:
            out[f"{schema}.{name}"] = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), ''))"
                f' FROM "{schema}"."{name}" t'
            ).fetchone()
        out["indexes"] = conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index i JOIN pg_class c"
            " ON c.oid = i.indrelid WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1"
        ).fetchall()
        out["constraints"] = conn.execute(
            "SELECT conname, contype FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace ORDER BY 1"
        ).fetchall()
        out["sequences"] = conn.execute(
            "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1"
        ).fetchall()
        out["triggers"] = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1"
        ).fetchall()
    return out


@pytest.fixture(scope="module")
def wide_db(pg: LocalPostgres) -> str:
    """One table of ~80 MB with two indexes (large enough to be cut in two), and a small
    table referencing it."""
    name = "wide_" + os.urandom(3).hex()
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(pg.dsn(name), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE lines (id bigint PRIMARY KEY, job int NOT NULL, body text NOT NULL);"
            "CREATE INDEX lines_job ON lines (job, id);"
            "INSERT INTO lines SELECT g, g % 997, md5(g::text) || repeat(E'tab\\there ', 9)"
            "  FROM generate_series(1, 700000) g;"
            "CREATE TABLE notes (id serial PRIMARY KEY, line bigint REFERENCES lines (id));"
            "INSERT INTO notes (line) SELECT g FROM generate_series(1, 500) g;"
        )
    return pg.dsn(name)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOCDBACKUP_PASSWORD": REPO_PASSWORD}
    return subprocess.run(
        [sys.executable, "-m", "gocdbackup.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _gb(tmp_path: Path, **kw: object) -> GocdBackup:
    return GocdBackup.init(
        f"file://{tmp_path}/repo",
        password=REPO_PASSWORD,
        scrypt_n=2**12,
        **kw,  # type: ignore[arg-type]
    )


def test_a_backup_records_where_each_tables_rows_lie(gocdnext_db: str, tmp_path: Path) -> None:
    gb = _gb(tmp_path)
    backup = gb.backup(gocdnext_db)
    component = backup.component(DUMP_KIND)
    layout = component.layout
    assert layout is not None
    head = b"".join(read_range(gb.repository, component.chunks, 0, layout.toc_end, gb.context()))
    toc = read_toc(head)
    assert {b.dump_id for b in layout.blocks} == toc.data_ids()
    assert {toc.entry(b.dump_id).desc for b in layout.blocks} == {"TABLE DATA"}
    assert layout.blocks[0].start == layout.toc_end
    assert layout.blocks[-1].end == component.size_bytes
    assert all(a.end == b.start for a, b in pairwise(layout.blocks))


def test_restore_by_tables_gives_the_database_one_stream_gives(
    pg: LocalPostgres, gocdnext_db: str, tmp_path: Path
) -> None:
    events: list[ProgressEvent] = []
    gb = _gb(tmp_path, progress=events.append)
    backup = gb.backup(gocdnext_db)
    by_tables = pg.dsn(clone(pg) + "_t")
    as_stream = pg.dsn(clone(pg) + "_s")
    report = gb.restore(backup.id, by_tables, confirm=backup.id, jobs=2)
    assert report.method == "tables"
    assert report.jobs == 2
    assert [name for name, _ in report.phases] == ["schema", "data", "post-data"]
    assert report.pieces == len(backup.component(DUMP_KIND).layout.blocks)  # type: ignore[union-attr]
    assert report.rows_checked == sum(t.rows for t in backup.database.tables)
    streamed = gb.restore(backup.id, as_stream, confirm=backup.id, jobs=1)
    assert streamed.method == "stream"
    assert streamed.phases == ()
    assert _fingerprint(by_tables) == _fingerprint(as_stream) == _fingerprint(gocdnext_db)
    loading = [e for e in events if e.phase == "restore" and e.message.endswith(" tables")]
    assert loading
    assert loading[-1].message == f"{report.pieces}/{report.pieces} tables"
    assert all(e.total == loading[0].total for e in loading)


def test_a_large_table_is_cut_into_pieces_loaded_side_by_side(
    pg: LocalPostgres, wide_db: str, tmp_path: Path
) -> None:
    gb = _gb(tmp_path)
    backup = gb.backup(wide_db)
    target = pg.dsn("wide_r_" + os.urandom(3).hex())
    report = gb.restore(backup.id, target, confirm=backup.id, jobs=2)
    assert report.method == "tables"
    assert report.pieces == 3  # lines in two pieces, notes in one
    assert _fingerprint(target) == _fingerprint(wide_db)


def test_a_piece_that_fails_gets_its_table_loaded_whole(
    pg: LocalPostgres, wide_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cut one byte off a frame boundary (which frame_boundary never gives) makes a piece
    fail: the table is emptied and loaded whole, and nothing is lost or doubled."""
    gb = _gb(tmp_path)
    backup = gb.backup(wide_db)
    server = PostgresServer(wide_db)
    staging = "wide_s_" + os.urandom(3).hex()
    server.create(staging, owner=None, encoding="UTF8")

    def off_by_one(data: bytes, at: int, int_size: int) -> int | None:
        found = frame_boundary(data, at, int_size)
        return None if found is None else found + 1

    try:
        with caplog.at_level(logging.WARNING, logger="gocdbackup.ops.restore"):
            loaded = load_by_tables(
                gb.repository,
                server,
                backup.component(DUMP_KIND),
                staging,
                role=None,
                min_tool_version=backup.database.pg_dump_version,
                jobs=2,
                ctx=gb.context(),
                boundary=off_by_one,
            )
        assert loaded is not None
        assert loaded.counted == backup.database.table_rows()
        assert "public.lines: a piece failed to load" in caplog.text
        _goose, tables = server.inspect(staging, loaded.counted)
        assert {t.name: t.rows for t in tables} == backup.database.table_rows()
    finally:
        server.drop(staging)


def test_a_corrupted_chunk_in_a_tables_rows_leaves_the_target_untouched(
    pg: LocalPostgres, gocdnext_db: str, tmp_path: Path
) -> None:
    gb = _gb(tmp_path)
    backup = gb.backup(gocdnext_db)
    component = backup.component(DUMP_KIND)
    target = pg.dsn(clone(pg))
    before = _fingerprint(target)
    path = tmp_path / "repo" / blob_key(component.chunks[-1].blob_id)  # table rows
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="fails authentication"):
        gb.restore(backup.id, target, confirm=backup.id, replace=True, jobs=2)
    assert _fingerprint(target) == before
    with psycopg.connect(pg.dsn()) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE strpos(datname, '__restore_') > 0"
        ).fetchall()
    assert left == []


def test_a_restore_cancelled_while_loading_tables_drops_its_staging_database(
    pg: LocalPostgres, wide_db: str, tmp_path: Path
) -> None:
    def cancel_while_loading(event: ProgressEvent) -> None:
        if event.phase == "restore" and event.done > 0 and event.message.endswith("tables"):
            gb.cancel_token.cancel("test")

    gb = _gb(tmp_path, progress=cancel_while_loading)
    backup = gb.backup(wide_db)
    target = "wide_c_" + os.urandom(3).hex()
    with pytest.raises(Cancelled):
        gb.restore(backup.id, pg.dsn(target), confirm=backup.id, jobs=2)
    with psycopg.connect(pg.dsn()) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{target}%",)
        ).fetchall()
        running = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE %s", (f"{target}%",)
        ).fetchone()
    assert left == []
    assert running == (0,)


def test_jobs_below_one_are_refused(gocdnext_db: str, tmp_path: Path) -> None:
    gb = _gb(tmp_path)
    backup = gb.backup(gocdnext_db)
    with pytest.raises(ConfigError, match="jobs must be at least 1"):
        gb.restore(backup.id, gocdnext_db + "_x", confirm=backup.id, jobs=0)
    proc = _cli(
        "restore", backup.id, "--repo", f"file://{tmp_path}/repo", "--db", gocdnext_db,
        "--confirm", backup.id, "--jobs", "0",
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--jobs" in proc.stderr


def test_the_cli_restores_with_jobs_and_reports_each_phase(
    pg: LocalPostgres, gocdnext_db: str, tmp_path: Path
) -> None:
    gb = _gb(tmp_path)
    backup = gb.backup(gocdnext_db)
    target = pg.dsn(clone(pg) + "_cli")
    proc = _cli(
        "restore", backup.id, "--repo", f"file://{tmp_path}/repo", "--db", target,
        "--confirm", backup.id, "-j", "2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "loaded table by table, 2 at a time: schema" in proc.stdout
    assert "post-data" in proc.stdout


def test_a_dump_of_the_older_pg_dump_has_a_layout_too(tmp_path: Path) -> None:
    """pg_dump 15 (the system's, when installed) frames its rows like 18's."""
    old = Path("/usr/lib/postgresql/15/bin")
    if not (old / "initdb").exists():
        pytest.skip("no PostgreSQL 15 installed")
    with LocalPostgres.start(bindir=str(old), password="p") as server:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        env = {**os.environ, "PGPASSWORD": "p"}
        args = [str(old / "pg_dump"), "--format=custom", "--compress=0", f"--dbname={server.dsn()}"]
        proc = subprocess.run(args, capture_output=True, env=env, check=True)
    scanner = LayoutScanner()
    scanner.feed(proc.stdout)
    layout = scanner.finish()
    assert layout is not None, scanner.why
    assert len(layout.blocks) == 1


def test_a_backup_without_a_layout_still_restores_as_one_stream(
    pg: LocalPostgres, gocdnext_db: str, tmp_path: Path
) -> None:
    """Backups taken before layouts were recorded (their manifests have none)."""
    gb = _gb(tmp_path)
    backup = gb.backup(gocdnext_db)
    older = attrs.evolve(
        backup, components=tuple(attrs.evolve(c, layout=None) for c in backup.components)
    )
    gb.repository.write_manifest(Manifest(backup=older))
    assert gb.get_backup(backup.id).component(DUMP_KIND).layout is None
    target = pg.dsn(clone(pg) + "_old")
    report = gb.restore(backup.id, target, confirm=backup.id, jobs=2)
    assert report.method == "stream"
    assert _fingerprint(target) == _fingerprint(gocdnext_db)
