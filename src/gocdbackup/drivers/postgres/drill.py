"""What a restore drill asks of a restored copy of gocdnext's database: the goose versions
applied, the foreign keys validated row by row (not trusted from the catalog), and a finished
job's logs (from ``log_lines``, or where its archive lies)."""

from __future__ import annotations

import time
from typing import Any

from psycopg import sql

from gocdbackup.drivers.postgres.gocdnext import NEWEST_RUN_SQL
from gocdbackup.drivers.postgres.server import PostgresServer
from gocdbackup.gocdnext.schema import GOOSE_TABLE
from gocdbackup.model.backup import RunMark
from gocdbackup.model.drill import RunLogs

_GOOSE_SQL = sql.SQL("SELECT version_id FROM {} WHERE is_applied ORDER BY version_id").format(
    sql.Identifier(GOOSE_TABLE)
)
# every foreign key of the user's tables (a partitioned table's once, not per partition)
_FKS_SQL = """
SELECT c.conname, n.nspname, t.relname, pn.nspname, p.relname,
       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(num, i)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num ORDER BY k.i),
       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(num, i)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num ORDER BY k.i)
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class p ON p.oid = c.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE c.contype = 'f' AND c.conparentid = 0
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY n.nspname, t.relname, c.conname
"""
# the newest finished job with logs (of one run, when asked)
_JOB_SQL = """
SELECT j.id::text, j.logs_archive_uri FROM job_runs j
WHERE j.finished_at IS NOT NULL AND ({run} IS NULL OR j.run_id::text = {run})
  AND (j.logs_archive_uri IS NOT NULL
       OR EXISTS (SELECT FROM log_lines l WHERE l.job_run_id = j.id))
ORDER BY j.finished_at DESC, j.id LIMIT 1
"""
# what the dashboard's main views read: projects, their pipelines, each one's latest run with
# its stages' and jobs' statuses
_DASHBOARD_SQL = """
SELECT p.slug, pl.name, r.counter, r.status,
       (SELECT array_agg(s.status ORDER BY s.ordinal) FROM stage_runs s WHERE s.run_id = r.id),
       (SELECT array_agg(j.status ORDER BY j.name) FROM job_runs j WHERE j.run_id = r.id)
FROM projects p JOIN pipelines pl ON pl.project_id = p.id
LEFT JOIN LATERAL (SELECT * FROM runs r WHERE r.pipeline_id = pl.id
                   ORDER BY r.counter DESC LIMIT 1) r ON true
ORDER BY p.slug, pl.name
"""
_LINES_SQL = "SELECT seq, stream, text FROM log_lines WHERE job_run_id = %s ORDER BY seq, at"


def _violations(
    child: tuple[str, str], parent: tuple[str, str], cols: list[str], refs: list[str]
) -> sql.Composed:
    """Rows of ``child`` whose key (all of it set: MATCH SIMPLE) has no row in ``parent``."""
    set_cols = sql.SQL(" AND ").join(
        sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(col)) for col in cols
    )
    match = sql.SQL(" AND ").join(
        sql.SQL("p.{} = c.{}").format(sql.Identifier(r), sql.Identifier(col))
        for col, r in zip(cols, refs, strict=True)
    )
    return sql.SQL(
        "SELECT count(*) FROM {}.{} c WHERE {} AND NOT EXISTS (SELECT FROM {}.{} p WHERE {})"
    ).format(
        sql.Identifier(child[0]),
        sql.Identifier(child[1]),
        set_cols,
        sql.Identifier(parent[0]),
        sql.Identifier(parent[1]),
        match,
    )


class DrillQueries:
    """The drill's questions to the restored database ``server`` names."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server

    def goose_versions(self) -> list[int]:
        with self.server.connect() as conn, self.server.translating():
            return [int(r[0]) for r in conn.execute(_GOOSE_SQL).fetchall()]

    def broken_foreign_keys(self) -> tuple[int, list[tuple[str, int]]]:
        """(foreign keys checked, [(``table.constraint``, rows without their parent)])."""
        broken: list[tuple[str, int]] = []
        with self.server.reading() as conn, self.server.translating():
            keys: list[Any] = conn.execute(_FKS_SQL).fetchall()
            for name, schema, table, pschema, ptable, cols, refs in keys:
                query = _violations((schema, table), (pschema, ptable), list(cols), list(refs))
                (count,) = conn.execute(query).fetchone() or (0,)
                if count:
                    broken.append((f"{schema}.{table}.{name}", int(count)))
        return len(keys), broken

    def newest_run(self) -> RunMark | None:
        with self.server.connect() as conn, self.server.translating():
            row = conn.execute(NEWEST_RUN_SQL).fetchone()
        return None if row is None else RunMark(id=str(row[0]), created_at=row[1])

    def dashboard(self) -> tuple[int, float]:
        with self.server.connect() as conn, self.server.translating():
            start = time.perf_counter()
            rows = conn.execute(_DASHBOARD_SQL).fetchall()
            return len(rows), time.perf_counter() - start

    def run_logs(self, run_id: str | None = None) -> RunLogs | None:
        query = sql.SQL(_JOB_SQL).format(run=sql.Literal(run_id))
        with self.server.reading() as conn, self.server.translating():
            row = conn.execute(query).fetchone()
            if row is None:
                return None
            job, archive = str(row[0]), row[1]
            lines = [] if archive else conn.execute(_LINES_SQL, (job,)).fetchall()
        return RunLogs(
            job_run_id=job,
            archive_key=None if archive is None else str(archive),
            lines=tuple((int(s), str(st), str(t)) for s, st, t in lines),
        )
