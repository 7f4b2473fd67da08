"""Backup and restore on a real PostgreSQL with real pg_dump/pg_restore."""

from __future__ import annotations

import threading

import psutil
import psycopg
import pytest

from gocdbackup import GocdBackup
from gocdbackup.errors import (
    IntegrityError,
    TargetExists,
    ToolFailed,
)
from gocdbackup.model import ProgressEvent
from gocdbackup.repository.repo import blob_key
from gocdbackup.testing import LocalPostgres, decrypt_gocdnext
from tests.conftest import REPO_PASSWORD, SECRET_KEY, clone

pytestmark = pytest.mark.integration


def _counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
        ).fetchall()
        return {
            t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]  # type: ignore[index]
            for (t,) in tables
        }


def _staging_leftovers(pg: LocalPostgres) -> list[str]:
    with psycopg.connect(pg.dsn()) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE strpos(datname, '__restore_') > 0"
        ).fetchall()
    return [r[0] for r in rows]


def test_backup_then_restore_into_a_new_database(
    pg: LocalPostgres, gocdnext_db: str, repo_url: str
) -> None:
    gb = GocdBackup.init(repo_url, password=REPO_PASSWORD, scrypt_n=2**12)
    backup = gb.backup(gocdnext_db, label="it")
    assert backup.point.goose_version == 86
    assert backup.point.server_version.startswith("18")
    assert backup.database.owner == "gocdnext"
    assert backup.database.table_rows()["public.goose_db_version"] == 87
    assert backup.database.size_bytes > 0

    target = pg.dsn("restored_" + backup.id[-6:])
    report = gb.restore(backup.id, target, confirm=backup.id)
    assert report.goose_version == 86
    assert _counts(target) == _counts(gocdnext_db)
    with psycopg.connect(target) as conn:
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        table_owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'artifacts'"
        ).fetchone()
        sealed = conn.execute(
            "SELECT value_enc FROM secrets WHERE value_enc IS NOT NULL"
        ).fetchall()
    assert owner == ("gocdnext",)
    assert table_owner == ("gocdnext",)  # objects belong to the application's role, not postgres
    assert sealed
    assert all(decrypt_gocdnext(SECRET_KEY, bytes(v)) for (v,) in sealed)


def test_snapshot_excludes_rows_committed_during_the_dump(
    pg: LocalPostgres, big_gocdnext_db: str, repo_url: str
) -> None:
    """A row committed while pg_dump streams is neither in the dump nor in the counts."""
    inserted = threading.Event()

    def write_during_dump(event: ProgressEvent) -> None:
        if event.phase == "dump" and event.done > 0 and not inserted.is_set():
            with psycopg.connect(big_gocdnext_db, autocommit=True) as conn:
                conn.execute("INSERT INTO projects (slug, name) VALUES ('late', 'Late')")
            inserted.set()

    gb = GocdBackup.init(
        repo_url, password=REPO_PASSWORD, scrypt_n=2**12, progress=write_during_dump
    )
    backup = gb.backup(big_gocdnext_db)
    assert inserted.is_set()
    assert backup.database.table_rows()["public.projects"] == 3
    target = pg.dsn(clone(pg) + "_r")
    gb.restore(backup.id, target, confirm=backup.id)
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM projects WHERE slug = 'late'").fetchone() == (0,)


def test_replace_swaps_only_after_checks(
    pg: LocalPostgres, gocdnext_db: str, repo_url: str
) -> None:
    gb = GocdBackup.init(repo_url, password=REPO_PASSWORD, scrypt_n=2**12)
    backup = gb.backup(gocdnext_db)
    with psycopg.connect(gocdnext_db, autocommit=True) as conn:
        conn.execute("DELETE FROM artifacts")  # someone deleted the release artefacts' rows
    with pytest.raises(TargetExists):
        gb.restore(backup.id, gocdnext_db, confirm=backup.id)
    holder = psycopg.connect(gocdnext_db)  # an application session that must be ended
    try:
        report = gb.restore(backup.id, gocdnext_db, confirm=backup.id, replace=True)
    finally:
        holder.close()
    assert report.replaced
    assert _counts(gocdnext_db)["artifacts"] == backup.database.table_rows()["public.artifacts"]
    with psycopg.connect(pg.dsn()) as conn:
        leftovers = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE '%%__restore_%%'"
        ).fetchall()
    assert leftovers == []


def test_corrupted_chunk_leaves_the_target_untouched(
    pg: LocalPostgres, gocdnext_db: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    gb = GocdBackup.init(f"file://{tmp_path}/repo", password=REPO_PASSWORD, scrypt_n=2**12)
    backup = gb.backup(gocdnext_db)
    with psycopg.connect(gocdnext_db, autocommit=True) as conn:
        conn.execute("INSERT INTO projects (slug, name) VALUES ('after', 'After')")
    before = _counts(gocdnext_db)
    path = tmp_path / "repo" / blob_key(backup.components[0].chunks[0].blob_id)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="fails authentication"):
        gb.restore(backup.id, gocdnext_db, confirm=backup.id, replace=True)
    assert _counts(gocdnext_db) == before
    assert _staging_leftovers(pg) == []


def test_pg_dump_killed_mid_stream_lists_nothing(big_gocdnext_db: str, repo_url: str) -> None:
    killed: list[int] = []

    def kill_pg_dump(event: ProgressEvent) -> None:
        if event.phase == "dump" and event.done > 0 and not killed:
            for child in psutil.Process().children(recursive=True):
                if child.name() == "pg_dump":
                    child.kill()
                    killed.append(child.pid)

    gb = GocdBackup.init(repo_url, password=REPO_PASSWORD, scrypt_n=2**12, progress=kill_pg_dump)
    with pytest.raises(ToolFailed, match="pg_dump was killed"):
        gb.backup(big_gocdnext_db)
    assert killed
    assert gb.list_backups() == []


def test_cancel_during_backup_stops_pg_dump(big_gocdnext_db: str, repo_url: str) -> None:
    from gocdbackup.errors import Cancelled

    holder: list[GocdBackup] = []

    def cancel(event: ProgressEvent) -> None:
        if event.phase == "dump" and event.done > 0:
            holder[0].cancel_token.cancel("test")

    gb = GocdBackup.init(repo_url, password=REPO_PASSWORD, scrypt_n=2**12, progress=cancel)
    holder.append(gb)
    with pytest.raises(Cancelled):
        gb.backup(big_gocdnext_db)
    assert gb.list_backups() == []
    assert not [c for c in psutil.Process().children(recursive=True) if c.name() == "pg_dump"]


def test_second_backup_after_small_change_deduplicates(big_gocdnext_db: str, repo_url: str) -> None:
    gb = GocdBackup.init(repo_url, password=REPO_PASSWORD, scrypt_n=2**12)
    first = gb.backup(big_gocdnext_db)
    with psycopg.connect(big_gocdnext_db, autocommit=True) as conn:
        conn.execute("UPDATE runs SET status = 'failed' WHERE counter = 20")
    second = gb.backup(big_gocdnext_db)
    assert first.dedup_ratio == 0.0
    assert second.dedup_ratio > 0.5
    assert second.stored_bytes < first.stored_bytes / 2
    assert second.database.table_rows() == first.database.table_rows()
