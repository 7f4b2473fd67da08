"""Shared fixtures: a real PostgreSQL (embedded 18) with a gocdnext-shaped template database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from gocdbackup.testing import FixtureSpec, LocalPostgres, build_gocdnext_fixture

PG_PASSWORD = "pg-" + uuid.uuid4().hex  # the server's superuser password for this session
REPO_PASSWORD = "repo-" + uuid.uuid4().hex
SECRET_KEY = os.urandom(32)  # the fixture's GOCDNEXT_SECRET_KEY
TEMPLATE = "gocdnext_template"
BIG_TEMPLATE = "gocdnext_big_template"


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalPostgres]:
    with LocalPostgres.start(password=PG_PASSWORD) as server:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE ROLE gocdnext LOGIN PASSWORD 'gocdnext'")
            conn.execute(f"CREATE DATABASE {TEMPLATE} OWNER gocdnext")
            conn.execute(f"CREATE DATABASE {BIG_TEMPLATE} OWNER gocdnext")
        # built by the application's role, as gocdnext's migrations would be
        app = {"user": "gocdnext", "password": "gocdnext"}
        build_gocdnext_fixture(server.dsn(TEMPLATE, **app), FixtureSpec(), secret_key=SECRET_KEY)
        build_gocdnext_fixture(
            server.dsn(BIG_TEMPLATE, **app),
            FixtureSpec(log_lines_per_job=600),
            secret_key=SECRET_KEY,
        )
        yield server


def clone(pg: LocalPostgres, template: str = TEMPLATE) -> str:
    """A fresh database copied from ``template``; returns its name."""
    name = "db_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER gocdnext").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return name


@pytest.fixture
def gocdnext_db(pg: LocalPostgres) -> str:
    """The DSN of a fresh gocdnext-shaped database (a few thousand rows)."""
    return pg.dsn(clone(pg))


@pytest.fixture
def big_gocdnext_db(pg: LocalPostgres) -> str:
    """The DSN of a fresh gocdnext-shaped database whose dump spans many chunks."""
    return pg.dsn(clone(pg, BIG_TEMPLATE))


@pytest.fixture
def repo_url(tmp_path: Path) -> str:
    return f"file://{tmp_path}/repo"


@pytest.fixture
def repo_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GOCDBACKUP_PASSWORD", REPO_PASSWORD)
    return REPO_PASSWORD
