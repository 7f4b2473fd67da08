"""The orphan-scan side of the Postgres driver: ``object_rows``, ``retire_rows`` and
``source_id`` on a real gocdnext-shaped database."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from gocdbackup.drivers.postgres import GocdnextTables, PostgresServer
from gocdbackup.errors import ConfigError
from gocdbackup.model.orphans import RowRef
from gocdbackup.testing import LocalPostgres
from tests.conftest import PG_PASSWORD

pytestmark = pytest.mark.integration

#: keys whose order differs between a linguistic collation and byte order ("C")
TRICKY = [
    "mix/B",
    "mix/a",
    "mix/A",
    "mix/a-b",
    "mix/a/b",
    "mix/a_b",
    "mix/a.b",
    "mix/aB",
    "mix/Ab",
    "mix/\u00e9",
    "mix/z",
    "mix/a b",
]


def dbname(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])


def app_dsn(pg: LocalPostgres, dsn: str) -> str:
    """The same database, as gocdnext's own (non-superuser) role."""
    return pg.dsn(dbname(dsn), user="gocdnext", password="gocdnext")


def admin(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


def linguistic_collation(conn: psycopg.Connection[Any]) -> str | None:
    """A collation usable here that sorts ``TRICKY`` differently from "C" (None if the server
    has none: then the database's own collation is byte-like and the test still checks the
    order, without proving the COLLATE matters)."""
    for name in ("en-x-icu", "und-x-icu", "unicode", "en_US.utf8", "en_US", "de_DE.utf8"):
        try:
            rows = conn.execute(
                sql.SQL("SELECT k FROM unnest(%s::text[]) k ORDER BY k COLLATE {}").format(
                    sql.Identifier(name)
                ),
                (TRICKY,),
            ).fetchall()
        except psycopg.Error:
            continue
        if [r[0] for r in rows] != sorted(TRICKY):
            return name
    return None


def expected_rows(conn: psycopg.Connection[Any]) -> list[RowRef]:
    """What ``object_rows`` must return, read column by column and stamped in Python."""
    out = [
        RowRef(
            key=key,
            table="artifacts",
            row_id=str(rid),
            status=status,
            size_bytes=size,
            sha256=sha,
            stamped_at=max(created, deleted or created),
        )
        for key, rid, status, size, sha, created, deleted in conn.execute(
            "SELECT storage_key, id, status, size_bytes, content_sha256, created_at, deleted_at"
            " FROM artifacts"
        )
    ]
    out += [
        RowRef(
            key=key,
            table="caches",
            row_id=str(rid),
            status=status,
            size_bytes=size,
            sha256=sha or "",
            stamped_at=max(created, updated),
        )
        for key, rid, status, size, sha, created, updated in conn.execute(
            "SELECT storage_key, id, status, size_bytes, content_sha256, created_at, updated_at"
            " FROM caches"
        )
    ]
    out += [
        RowRef(
            key=key,
            table="job_runs",
            row_id=str(rid),
            status="ready",
            size_bytes=None,
            sha256="",
            stamped_at=at,
        )
        for key, rid, at in conn.execute(
            "SELECT logs_archive_uri, id, logs_archived_at FROM job_runs"
            " WHERE logs_archive_uri IS NOT NULL"
        )
    ]
    return sorted(
        (
            RowRef(
                key=r.key,
                table=r.table,
                row_id=r.row_id,
                status=r.status,
                size_bytes=r.size_bytes,
                sha256=r.sha256,
                stamped_at=None if r.stamped_at is None else r.stamped_at.astimezone(UTC),
            )
            for r in out
        ),
        key=lambda r: (r.key, r.table, r.row_id),
    )


def shape(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Plant the interesting rows: tricky keys, a deleting and a pending artefact, a cache key
    two rows share, a job archive with a tricky key, and 4000 extra artefacts (several fetch
    batches)."""
    collation = linguistic_collation(conn)
    if collation is not None:  # the tables' own order is then not byte order
        for table, column in (
            ("artifacts", "storage_key"),
            ("caches", "storage_key"),
            ("job_runs", "logs_archive_uri"),
        ):
            conn.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE text COLLATE {}").format(
                    sql.Identifier(table), sql.Identifier(column), sql.Identifier(collation)
                )
            )
    ids = [r[0] for r in conn.execute("SELECT id FROM artifacts ORDER BY id LIMIT %s", (12,))]
    for rid, key in zip(ids, TRICKY, strict=True):
        conn.execute("UPDATE artifacts SET storage_key = %s WHERE id = %s", (key, rid))
    deleting, pending = ids[0], ids[1]
    conn.execute(
        "UPDATE artifacts SET status = 'deleting', created_at = now() - interval '2 days',"
        " deleted_at = now() - interval '1 hour' WHERE id = %s",
        (deleting,),
    )
    conn.execute(
        "UPDATE artifacts SET status = 'pending', size_bytes = 0, content_sha256 = ''"
        " WHERE id = %s",
        (pending,),
    )
    caches = [r[0] for r in conn.execute("SELECT id FROM caches ORDER BY id")]
    conn.execute(
        "UPDATE caches SET storage_key = 'mix/a-b', updated_at = now() + interval '1 minute'"
        " WHERE id = ANY(%s)",
        (caches[:2],),
    )
    (job,) = conn.execute(
        "SELECT id FROM job_runs WHERE logs_archive_uri IS NOT NULL ORDER BY id LIMIT 1"
    ).fetchone() or (None,)
    conn.execute("UPDATE job_runs SET logs_archive_uri = 'mix/Z.log.gz' WHERE id = %s", (job,))
    conn.execute(
        "INSERT INTO artifacts (run_id, job_run_id, pipeline_id, project_id, path, storage_key,"
        " size_bytes, content_sha256, status, created_at)"
        " SELECT a.run_id, a.job_run_id, a.pipeline_id, a.project_id, 'extra/' || i,"
        " 'run/' || a.run_id || '/job/' || a.job_run_id || '/' || gen_random_uuid(),"
        " i, md5(i::text), 'ready', now() - interval '3 days'"
        " FROM (SELECT * FROM artifacts ORDER BY id LIMIT 1) a, generate_series(1, 4000) i"
    )
    return {
        "collation": collation,
        "deleting": str(deleting),
        "pending": str(pending),
        "shared": sorted(str(c) for c in caches[:2]),
        "job": str(job),
    }


def test_object_rows_are_every_referencing_row_in_byte_order(
    pg: LocalPostgres, gocdnext_db: str
) -> None:
    with admin(gocdnext_db) as conn:
        planted = shape(conn)
        expected = expected_rows(conn)
        (deleted_at, created_at) = conn.execute(
            "SELECT deleted_at, created_at FROM artifacts WHERE id = %s", (planted["deleting"],)
        ).fetchone() or (None, None)
        if planted["collation"] is not None:  # the data does tell the two orders apart
            default_order = [
                r[0]
                for r in conn.execute(
                    "SELECT storage_key FROM artifacts WHERE storage_key LIKE 'mix/%%'"
                    " ORDER BY storage_key"
                )
            ]
            assert default_order != sorted(default_order)

    rows = list(GocdnextTables(PostgresServer(app_dsn(pg, gocdnext_db))).object_rows())

    assert rows == expected
    keys = [r.key for r in rows]
    assert keys == sorted(keys)  # Python str order, which is UTF-8 byte order
    assert len(rows) > 4000
    mixed = [r.key for r in rows if r.key.startswith("mix/")]
    assert mixed == sorted([*TRICKY, "mix/a-b", "mix/a-b", "mix/Z.log.gz"])
    by_id = {(r.table, r.row_id): r for r in rows}
    gone = by_id[("artifacts", planted["deleting"])]
    assert gone.status == "deleting"
    assert gone.stamped_at == deleted_at  # the claim, not the creation two days before
    assert gone.stamped_at != created_at
    assert by_id[("artifacts", planted["pending"])].status == "pending"
    shared = [r for r in rows if r.key == "mix/a-b" and r.table == "caches"]
    assert [r.row_id for r in shared] == planted["shared"]  # ties: by table, then id
    assert all(r.stamped_at is not None and r.stamped_at.tzinfo is not None for r in rows)
    archive = by_id[("job_runs", planted["job"])]
    assert archive.key == "mix/Z.log.gz"
    assert archive.size_bytes is None
    assert archive.sha256 == ""
    caches = [r for r in rows if r.table == "caches"]
    assert any(r.status == "pending" and r.sha256 == "" for r in caches)  # NULL digest
    assert {r.table for r in rows} == {"artifacts", "caches", "job_runs"}


def test_start_after_resumes_exactly(pg: LocalPostgres, gocdnext_db: str) -> None:
    with admin(gocdnext_db) as conn:
        shape(conn)
    db = GocdnextTables(PostgresServer(app_dsn(pg, gocdnext_db)))
    everything = list(db.object_rows())
    assert list(db.object_rows("")) == everything
    for after in ["mix/A", "mix/a-b", "mix/a-", "mix/a/b", "mix/\u00e9", "run/", "m"]:
        resumed = list(db.object_rows(after))
        assert resumed == [r for r in everything if r.key > after], after
    assert list(db.object_rows(everything[-1].key)) == []
    # resuming page by page from the last key seen gives every key exactly once
    seen: list[str] = []
    cursor = ""
    while True:
        page = []
        for row in db.object_rows(cursor):
            page.append(row.key)
            if len(page) == 700:
                break
        if not page:
            break
        last = page[-1]
        seen += [k for k in page if k != last] + [last]
        seen = list(dict.fromkeys(seen))
        cursor = last
    assert seen == list(dict.fromkeys(r.key for r in everything))


def sessions(conn: psycopg.Connection[Any], name: str) -> list[tuple[str, str]]:
    return [
        (str(state), str(query))
        for state, query in conn.execute(
            "SELECT state, query FROM pg_stat_activity"
            # client sessions only: an autovacuum worker may visit the database any time
            " WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            (name,),
        )
    ]


def test_closing_early_ends_the_transaction(pg: LocalPostgres, gocdnext_db: str) -> None:
    name = dbname(gocdnext_db)
    with admin(gocdnext_db) as conn:
        shape(conn)
    rows = GocdnextTables(PostgresServer(app_dsn(pg, gocdnext_db))).object_rows()
    first = next(rows)
    assert first.key
    with admin(pg.dsn()) as conn:
        (state, query), *others = sessions(conn, name)
        assert not others
        assert state == "idle in transaction"
        assert "FETCH FORWARD 2000" in query  # a server-side cursor, fetched in batches
        rows.close()
        deadline = time.monotonic() + 10
        while sessions(conn, name) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sessions(conn, name) == []
        conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))  # no FORCE


def test_a_database_without_gocdnext_tables_is_refused(pg: LocalPostgres) -> None:
    name = "plain_" + uuid.uuid4().hex[:8]
    with admin(pg.dsn()) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db = GocdnextTables(PostgresServer(pg.dsn(name)))
    with pytest.raises(ConfigError, match="not a gocdnext database") as info:
        list(db.object_rows())
    assert "every object an orphan" in str(info.value)
    assert PG_PASSWORD not in str(info.value)
    row = RowRef(key="logs/x.log.gz", table="job_runs", row_id=str(uuid.uuid4()), status="ready")
    with pytest.raises(ConfigError, match="not a gocdnext database"):
        db.retire_rows([row])
    with admin(pg.dsn()) as conn:  # nothing left connected
        conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))


def test_retire_rows_changes_exactly_the_rows_still_as_read(
    pg: LocalPostgres, gocdnext_db: str
) -> None:
    db = GocdnextTables(PostgresServer(app_dsn(pg, gocdnext_db)))
    with admin(gocdnext_db) as conn:
        shape(conn)
        conn.execute("UPDATE artifacts SET pinned_at = now() WHERE storage_key = 'mix/A'")
    before = list(db.object_rows())
    by_key = {(r.table, r.key): r for r in before}
    artefact = by_key[("artifacts", "mix/A")]
    stale = by_key[("artifacts", "mix/a")]  # pending
    assert (artefact.status, stale.status) == ("ready", "pending")
    moved_on = by_key[("artifacts", "mix/z")]  # the sweeper claims it before we retire it
    pending = next(r for r in before if r.table == "caches" and r.status == "pending")
    archive = by_key[("job_runs", "mix/Z.log.gz")]
    rekeyed = next(r for r in before if r.table == "caches" and r.key == "mix/a-b")
    with admin(gocdnext_db) as conn:
        conn.execute(
            "UPDATE artifacts SET status = 'deleting', deleted_at = '2020-01-01Z' WHERE id = %s",
            (moved_on.row_id,),
        )
        conn.execute("UPDATE caches SET storage_key = 'mix/new' WHERE id = %s", (rekeyed.row_id,))
    ghost = RowRef(key="mix/ghost", table="artifacts", row_id=str(uuid.uuid4()), status="ready")
    started = datetime.now(UTC)

    changed = db.retire_rows(iter([artefact, stale, moved_on, pending, archive, rekeyed, ghost]))

    assert changed == 4
    with admin(gocdnext_db) as conn:
        status, deleted, expires, pinned = (
            conn.execute(
                "SELECT status, deleted_at, expires_at, pinned_at FROM artifacts WHERE id = %s",
                (artefact.row_id,),
            ).fetchone()
            or (None,) * 4
        )
        assert status == "deleting"
        assert deleted == expires
        assert deleted >= started - timedelta(seconds=5)
        assert pinned is None
        assert conn.execute(
            "SELECT status FROM artifacts WHERE id = %s", (stale.row_id,)
        ).fetchone() == ("deleting",)
        status, deleted = conn.execute(
            "SELECT status, deleted_at FROM artifacts WHERE id = %s", (moved_on.row_id,)
        ).fetchone() or (None, None)
        assert (status, deleted) == ("deleting", datetime(2020, 1, 1, tzinfo=UTC))
        assert (
            conn.execute("SELECT 1 FROM caches WHERE id = %s", (pending.row_id,)).fetchone() is None
        )
        assert conn.execute(
            "SELECT storage_key FROM caches WHERE id = %s", (rekeyed.row_id,)
        ).fetchone() == ("mix/new",)
        assert conn.execute(
            "SELECT logs_archive_uri, logs_archived_at FROM job_runs WHERE id = %s",
            (archive.row_id,),
        ).fetchone() == (None, None)
    after = {(r.table, r.row_id): r for r in db.object_rows()}
    untouched = {
        (r.table, r.row_id): r
        for r in before
        if r.row_id
        not in {r.row_id for r in (artefact, stale, moved_on, pending, archive, rekeyed)}
    }
    assert {k: after[k] for k in untouched} == untouched
    assert ("job_runs", archive.row_id) not in after
    assert after[("artifacts", artefact.row_id)].status == "deleting"
    assert db.retire_rows([]) == 0
    assert db.retire_rows([artefact]) == 0  # already retired: no longer 'ready'


def test_retire_rows_of_an_unknown_table_changes_nothing(
    pg: LocalPostgres, gocdnext_db: str
) -> None:
    db = GocdnextTables(PostgresServer(app_dsn(pg, gocdnext_db)))
    before = list(db.object_rows())
    ready = next(r for r in before if r.table == "artifacts" and r.status == "ready")
    bogus = RowRef(key="x", table="secrets", row_id=str(uuid.uuid4()), status="ready")
    with pytest.raises(ConfigError, match="secrets"):
        db.retire_rows([ready, bogus])
    assert list(db.object_rows()) == before


def test_source_id_names_server_and_database_without_secrets(
    pg: LocalPostgres, gocdnext_db: str
) -> None:
    name = dbname(gocdnext_db)
    superuser = GocdnextTables(PostgresServer(gocdnext_db))
    app = GocdnextTables(PostgresServer(app_dsn(pg, gocdnext_db)))
    sid = superuser.source_id()
    assert sid == superuser.source_id() == app.source_id()
    assert sid.startswith(f"postgresql://127.0.0.1:{pg.port}/{name} (system ")
    assert PG_PASSWORD not in sid
    assert "gocdnext@" not in sid
    assert "password" not in sid
    other = GocdnextTables(PostgresServer(pg.dsn("postgres"))).source_id()
    assert other != sid
    assert other.split(" (system ")[1] == sid.split(" (system ")[1]  # same server
    # where the role may not read the control file, the address alone names the database
    with admin(gocdnext_db) as conn:
        conn.execute("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC")
    assert app.source_id() == f"postgresql://127.0.0.1:{pg.port}/{name}"
    assert superuser.source_id() == sid


def test_referenced_objects_are_read_in_the_backups_snapshot(
    pg: LocalPostgres, gocdnext_db: str
) -> None:
    """``referenced_objects`` imports the exported snapshot on a connection of its own: it sees
    the rows as they were at the export, while the snapshot is held open, and only then."""
    from gocdbackup.context import OpContext
    from gocdbackup.drivers.postgres import goose_version
    from gocdbackup.errors import PostgresError

    server = PostgresServer(app_dsn(pg, gocdnext_db), schema_version=goose_version)
    tables = GocdnextTables(server)
    with server.snapshot(OpContext()) as snap:
        with admin(gocdnext_db) as conn:
            (victim,) = conn.execute(
                "DELETE FROM artifacts WHERE id = (SELECT min(id::text)::uuid FROM artifacts)"
                " RETURNING storage_key"
            ).fetchone() or (None,)
        seen = tables.referenced_objects(snap.snapshot_id)
        assert victim in {r.key for r in seen}  # deleted after the export: still in it
        assert snap.point().goose_version == 86  # through the schema_version hook
    with pytest.raises(PostgresError):
        tables.referenced_objects(snap.snapshot_id)  # the snapshot is gone with its transaction
    with PostgresServer(app_dsn(pg, gocdnext_db)).snapshot(OpContext()) as plain:
        assert plain.point().goose_version is None  # generic: no hook, no schema version
