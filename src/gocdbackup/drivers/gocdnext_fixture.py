"""Builds a gocdnext-shaped database: schema, realistic rows, secrets encrypted the way gocdnext
encrypts them (AES-256-GCM, ``nonce(12) || ciphertext || tag``, no associated data, with the
32-byte ``GOCDNEXT_SECRET_KEY``), and goose at version 86.

Bulk rows are generated inside the server (``generate_series``), so a database of hundreds of
megabytes builds in seconds.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import random
import tarfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import psycopg
from attrs import frozen
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from psycopg import sql

from gocdbackup.gocdnext import cipher as gocdnext_cipher
from gocdbackup.gocdnext.secrets import ENCRYPTED_COLUMNS, Form
from gocdbackup.ports import ObjectStore

GOOSE_VERSION = 86

#: the plaintext of one global secret (named CANARY_NAME): recognisable anywhere it leaks, so
#: tests can assert that no output, log, report or file ever contains it
CANARY_SECRET = "gocdbackup-canary-3f9a1c7e5b2d4086-must-never-appear"  # noqa: S105
CANARY_NAME = "GOCDBACKUP_CANARY"


@frozen(kw_only=True)
class FixtureSpec:
    projects: int = 3
    pipelines_per_project: int = 2
    runs_per_pipeline: int = 20
    jobs_per_stage: int = 1
    log_lines_per_job: int = 20
    #: share of finished jobs whose logs are archived to the store (no rows in log_lines)
    archived_share: float = 0.5
    secrets_per_project: int = 2


encrypt_gocdnext = gocdnext_cipher.encrypt
decrypt_gocdnext = gocdnext_cipher.decrypt


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def _add_months(d: datetime, n: int) -> datetime:
    index = d.year * 12 + d.month - 1 + n
    return _month_start(index // 12, index % 12 + 1)


def create_schema(conn: psycopg.Connection[Any], *, now: datetime) -> None:
    """Tables, indexes, log partitions (24 months back, 3 ahead) and goose rows 0..86."""
    ddl = files("gocdbackup.drivers").joinpath("gocdnext_schema.sql").read_text()
    conn.execute(ddl)
    first = _add_months(_month_start(now.year, now.month), -24)
    conn.execute(
        sql.SQL(
            "CREATE TABLE log_lines_pre PARTITION OF log_lines FOR VALUES FROM (MINVALUE) TO ({})"
        ).format(sql.Literal(first))
    )
    for n in range(24 + 4):
        lo = _add_months(first, n)
        hi = _add_months(first, n + 1)
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF log_lines FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(f"log_lines_y{lo.year:04d}m{lo.month:02d}"),
                sql.Literal(lo),
                sql.Literal(hi),
            )
        )
    conn.execute(
        "INSERT INTO goose_db_version (version_id, is_applied)"
        " SELECT v, true FROM generate_series(0, %s) v",
        (GOOSE_VERSION,),
    )


_BULK = [
    """INSERT INTO projects (slug, name, created_at)
       SELECT 'project-' || i, 'Project ' || i, now() - interval '400 days'
       FROM generate_series(1, %(projects)s) i""",
    """INSERT INTO pipelines (project_id, name, definition, definition_raw, created_at)
       SELECT p.id, 'pipeline-' || j,
              '{"stages": ["build", "test", "deploy"], "materials": [{"git": "main"}]}',
              '{"raw": "stages: [build, test, deploy]"}', p.created_at
       FROM projects p, generate_series(1, %(pipelines)s) j""",
    """INSERT INTO runs (pipeline_id, counter, cause, revisions, status, created_at,
                         started_at, finished_at)
       SELECT pl.id, k, CASE WHEN k %% 5 = 0 THEN 'manual' ELSE 'webhook' END,
              jsonb_build_object('sha', md5(pl.id::text || k), 'branch', 'main'),
              CASE WHEN k %% 11 = 0 THEN 'failed' ELSE 'success' END,
              now() - (%(runs)s - k + 1) * interval '37 minutes',
              now() - (%(runs)s - k + 1) * interval '37 minutes' + interval '5 seconds',
              now() - (%(runs)s - k + 1) * interval '37 minutes' + interval '9 minutes'
       FROM pipelines pl, generate_series(1, %(runs)s) k""",
    """INSERT INTO stage_runs (run_id, name, ordinal, status, started_at, finished_at)
       SELECT r.id, s.name, s.ord, r.status, r.started_at + s.ord * interval '3 minutes',
              r.started_at + (s.ord + 1) * interval '3 minutes'
       FROM runs r, (VALUES ('build', 0), ('test', 1), ('deploy', 2)) AS s(name, ord)""",
    """INSERT INTO job_runs (run_id, stage_run_id, name, status, started_at, finished_at)
       SELECT sr.run_id, sr.id, sr.name || '-' || m, sr.status, sr.started_at, sr.finished_at
       FROM stage_runs sr, generate_series(1, %(jobs)s) m""",
    """UPDATE job_runs SET logs_archive_uri = 'logs/' || id || '.log.gz',
                           logs_archived_at = finished_at + interval '1 minute'
       WHERE ('x' || substr(md5(id::text), 1, 8))::bit(32)::bigint
             < %(archived)s * 4294967296""",
    """INSERT INTO log_lines (job_run_id, seq, stream, at, text)
       SELECT jr.id, n, CASE WHEN n %% 9 = 0 THEN 'stderr' ELSE 'stdout' END,
              jr.started_at + n * interval '15 milliseconds',
              '[' || jr.name || '] step ' || n || ': ' || md5(jr.id::text || n)
                  || ' compiling module ' || (n %% 97) || ' ok'
       FROM job_runs jr, generate_series(1, %(lines)s) n
       WHERE jr.logs_archive_uri IS NULL
       ORDER BY jr.started_at, jr.id, n""",  # a job's lines arrive together, in time order
    """INSERT INTO artifacts (run_id, job_run_id, pipeline_id, project_id, path, storage_key,
                              size_bytes, content_sha256, status, expires_at, created_at)
       SELECT r.id, jr.id, r.pipeline_id, pl.project_id, 'dist/' || jr.name || '.tar.gz',
              'run/' || r.id || '/job/' || jr.id || '/' || gen_random_uuid(),
              1024 + (r.counter * 7919) %% 100000,
              encode(sha256(convert_to(jr.id::text, 'UTF8')), 'hex'), 'ready',
              jr.finished_at + interval '30 days', jr.finished_at
       FROM job_runs jr JOIN stage_runs sr ON sr.id = jr.stage_run_id AND sr.name = 'build'
            JOIN runs r ON r.id = jr.run_id JOIN pipelines pl ON pl.id = r.pipeline_id""",
    """INSERT INTO caches (project_id, key, storage_key, size_bytes, content_sha256, status)
       SELECT p.id, c.key,
              'cache/' || p.id || '/' || encode(sha256(convert_to(c.key, 'UTF8')), 'hex'),
              4096 + length(c.key) * 1000,
              CASE WHEN c.ready THEN encode(sha256(convert_to(p.id || c.key, 'UTF8')), 'hex') END,
              CASE WHEN c.ready THEN 'ready' ELSE 'pending' END
       FROM projects p, (VALUES ('pnpm', true), ('go-mod', true), ('gradle', false))
            AS c(key, ready)""",
]


def populate(conn: psycopg.Connection[Any], spec: FixtureSpec, *, secret_key: bytes) -> None:
    """Fill the schema; secrets are sealed with ``secret_key`` (32 bytes)."""
    params = {
        "projects": spec.projects,
        "pipelines": spec.pipelines_per_project,
        "runs": spec.runs_per_pipeline,
        "jobs": spec.jobs_per_stage,
        "lines": spec.log_lines_per_job,
        "archived": spec.archived_share,
    }
    for statement in _BULK:
        conn.execute(statement, params)
    projects = conn.execute("SELECT id, slug FROM projects ORDER BY slug").fetchall()
    seal = functools.partial(encrypt_gocdnext, secret_key)
    rows: list[tuple[Any, ...]] = []
    for pid, slug in projects:
        for n in range(spec.secrets_per_project):
            value = f"{slug}-token-{n}-{os.urandom(8).hex()}".encode()
            rows.append((pid, f"DEPLOY_TOKEN_{n}", seal(value), "db", None))
        rows.append((pid, "VAULT_DB_PASSWORD", None, "vault", f"secret/{slug}/db"))
    rows.append((None, "GLOBAL_REGISTRY_TOKEN", seal(b"registry"), "db", None))
    rows.append((None, CANARY_NAME, seal(CANARY_SECRET.encode()), "db", None))
    _insert(conn, "secrets (project_id, name, value_enc, source, ref_path)", rows)
    creds = json.dumps({"access_key": "AKIAFIXTURE", "secret_key": os.urandom(16).hex()})
    vault = json.dumps({"secret_id": os.urandom(8).hex(), "token": "hvs." + os.urandom(12).hex()})
    settings = [
        ("artifacts.storage", _S3_SETTING, seal(creds.encode())),
        ("secrets.vault", '{"enabled": true, "addr": "https://vault:8200"}', seal(vault.encode())),
        ("secrets.gcp", '{"enabled": false}', None),  # no credentials: a NULL
    ]
    _insert(conn, "platform_settings (key, value, credentials_enc)", settings)
    _seal_other_columns(conn, [pid for pid, _ in projects], seal)


_S3_SETTING = json.dumps({"backend": "s3", "bucket": "gocdnext-artifacts", "region": "us-east-1"})
_PEM = b"-----BEGIN RSA PRIVATE KEY-----\nfixture\n-----END RSA PRIVATE KEY-----\n"
_KUBECONFIG = b"apiVersion: v1\nkind: Config\nusers: [{name: ci, user: {token: fixture}}]\n"


def _insert(conn: psycopg.Connection[Any], target: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` into ``target``, a literal ``"table (column, ...)"`` of this module."""
    marks = ", ".join(["%s"] * (target.count(",") + 1))
    with conn.cursor() as cur:
        cur.executemany(
            sql.SQL("INSERT INTO {} VALUES ({})").format(sql.SQL(target), sql.SQL(marks)), rows
        )


@functools.cache
def _rsa_key(n: int) -> tuple[bytes, bytes]:
    """An RSA key as (PKCS#8 DER, PKIX DER), made once per process (n tells keys apart)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    return private, key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _seal_other_columns(
    conn: psycopg.Connection[Any], projects: list[Any], seal: Callable[[bytes], bytes]
) -> None:
    """Rows for the eight other sealed columns, each with values and, where the column allows
    it, a NULL (gocdnext's plaintexts: tokens, a PEM key, DER keys, a kubeconfig)."""

    def token(label: str) -> bytes:
        return seal(f"{label}-{os.urandom(12).hex()}".encode())

    def hexmap(*names: str) -> str:  # runner profiles: {NAME: lowercase hex of a blob}
        return json.dumps({n: token(n).hex() for n in names})

    (old, old_public), (new, new_public) = _rsa_key(0), _rsa_key(1)
    tables: dict[str, list[tuple[Any, ...]]] = {
        "auth_providers (name, kind, client_id, client_secret)": [
            ("github", "github", "Iv1.fixture", token("gh-oauth")),
            ("okta", "oidc", "0oa1", token("oidc")),
        ],
        "vcs_integrations (kind, name, app_id, private_key, webhook_secret)": [
            ("github_app", "github", 123456, seal(_PEM), token("app-hook")),
            ("github_app", "github-pending", None, None, None),  # not configured yet: NULLs
        ],
        "scm_sources (project_id, provider, url, webhook_secret)": [
            # the last of several projects is bound by hand: no webhook secret, a NULL
            (pid, "manual", f"https://git.example/p{n}", None)
            if 0 < n == len(projects) - 1
            else (pid, "github", f"https://github.com/acme/p{n}", token("repo-hook"))
            for n, pid in enumerate(projects)
        ],
        "scm_credentials (provider, host, auth_ref_encrypted)": [
            ("gitlab", "gitlab.example", token("glpat")),
            ("bitbucket", "bitbucket.org", token("bb")),
        ],
        "runner_profiles (name, engine, env, secrets)": [
            ("default", "kubernetes", '{"REGION": "eu"}', hexmap("AWS_KEY_ID", "AWS_SECRET")),
            ("gpu", "kubernetes", "{}", hexmap("HF_TOKEN")),
            ("plain", "kubernetes", "{}", "{}"),  # no secrets
        ],
        "oidc_signing_keys (kid, private_key_enc, public_key_der, retired_at)": [
            ("kid-0", seal(old), old_public, datetime.now(UTC)),
            ("kid-1", seal(new), new_public, None),  # the one active key
        ],
        "clusters (name, auth_type, api_server, credential_enc)": [
            ("prod-gke", "kubeconfig", "", seal(_KUBECONFIG)),
            ("staging", "token", "https://10.0.0.1:6443", token("k8s-token")),
            ("local", "in_cluster", "", None),  # the job pod's own account: a NULL
        ],
    }
    for target, rows in tables.items():
        _insert(conn, target, rows)


def build(
    dsn: str, spec: FixtureSpec | None = None, *, secret_key: bytes, now: datetime | None = None
) -> None:
    """Create the schema and rows in the (empty) database ``dsn`` names."""
    with psycopg.connect(dsn, autocommit=False) as conn:
        create_schema(conn, now=now or datetime.now(UTC))
        populate(conn, spec or FixtureSpec(), secret_key=secret_key)
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def create_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _sealed_blobs(conn: psycopg.Connection[Any]) -> Iterator[tuple[str, bytes]]:
    """(column name, blob) of every non-NULL sealed value of the ten columns, read with this
    module's own SQL (independent of the driver it helps test); a map's entries hex-decoded."""
    for col in ENCRYPTED_COLUMNS:
        ident = sql.Identifier(col.column)
        query = (
            sql.SQL("SELECT e.value FROM {}, jsonb_each_text({}) e WHERE e.value IS NOT NULL")
            if col.form is Form.HEX_MAP
            else sql.SQL("SELECT {1} FROM {0} WHERE {1} IS NOT NULL")
        ).format(sql.Identifier(col.table), ident)
        for (value,) in conn.execute(query):
            yield col.name, bytes.fromhex(value) if isinstance(value, str) else bytes(value)


def open_all(dsn: str, secret_key: bytes) -> dict[str, list[bytes]]:
    """Every sealed value of the fixture opened with ``secret_key``: plaintexts by column name
    (all ten, NULLs left out).  Raises :class:`~gocdbackup.errors.ConfigError` on the first
    that does not open."""
    opened: dict[str, list[bytes]] = {c.name: [] for c in ENCRYPTED_COLUMNS}
    with psycopg.connect(dsn) as conn:
        for column, blob in _sealed_blobs(conn):
            opened[column].append(decrypt_gocdnext(secret_key, blob))
    return opened


def decrypt_all(dsn: str, secret_key: bytes) -> int:
    """Decrypt every sealed value of the fixture (all ten columns) with ``secret_key``; how
    many there were.  Raises :class:`~gocdbackup.errors.ConfigError` on the first that does
    not open."""
    return sum(map(len, open_all(dsn, secret_key).values()))


def _tar_gz(name: str, payload: bytes) -> bytes:
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def _log_archive(job_id: str, lines: int) -> bytes:
    text = "".join(
        f"{n}\t2026-11-20T00:30:{n % 60:02d}.000000000Z\tstdout\tstep {n} of {job_id}: ok\\n\n"
        for n in range(1, lines + 1)
    )
    return gzip.compress(text.encode(), mtime=0)


def write_objects(dsn: str, store: ObjectStore, *, seed: int = 0) -> int:
    """Put a real object in ``store`` for every ready artefact, ready cache and stamped log
    archive of the fixture database, and record each object's true size and SHA-256 in its
    row, as gocdnext's agents and archiver do.  The number of objects written; the same
    contents for the same ``seed`` and rows.  Public as :func:`gocdbackup.testing.fill_store`."""
    rng = random.Random(seed)  # noqa: S311 - test data, not cryptography
    written = 0
    with psycopg.connect(dsn) as conn:
        for table, kind in (("artifacts", "artifact"), ("caches", "cache")):
            rows = conn.execute(
                sql.SQL("SELECT id, storage_key FROM {} WHERE status = 'ready' ORDER BY id").format(
                    sql.Identifier(table)
                )
            ).fetchall()
            for row_id, key in rows:
                payload = rng.randbytes(rng.randint(2_000, 40_000))
                data = _tar_gz(f"{kind}-{row_id}.bin", payload)
                store.write(key, data)
                conn.execute(
                    sql.SQL(
                        "UPDATE {} SET size_bytes = %s, content_sha256 = %s WHERE id = %s"
                    ).format(sql.Identifier(table)),
                    (len(data), hashlib.sha256(data).hexdigest(), row_id),
                )
                written += 1
        for job_id, key in conn.execute(
            "SELECT id::text, logs_archive_uri FROM job_runs"
            " WHERE logs_archive_uri IS NOT NULL ORDER BY id"
        ).fetchall():
            store.write(key, _log_archive(job_id, rng.randint(5, 60)))
            written += 1
        conn.commit()
    return written


def check_objects(dsn: str, store: ObjectStore) -> tuple[int, list[str]]:
    """Every object a ready row references: present, and with the recorded SHA-256 where there
    is one. (checked, problems)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT storage_key, content_sha256 FROM artifacts WHERE status = 'ready'"
            " UNION ALL SELECT storage_key, content_sha256 FROM caches WHERE status = 'ready'"
            " UNION ALL SELECT logs_archive_uri, NULL FROM job_runs"
            " WHERE logs_archive_uri IS NOT NULL"
        ).fetchall()
    problems = []
    for key, sha in rows:
        if not store.exists(key):
            problems.append(f"{key}: missing")
        elif sha and hashlib.sha256(store.read(key)).hexdigest() != sha:
            problems.append(f"{key}: wrong content")
    return len(rows), problems
