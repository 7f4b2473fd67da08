from __future__ import annotations

import pytest

from gocdbackup.context import OpContext
from gocdbackup.repository import ChunkerParams, Repository
from gocdbackup.testing import (
    FakeClock,
    FakeDatabaseContents,
    FakeGocdnext,
    FakePostgres,
    MemoryStore,
    RecordingProgress,
)

PASS = b"correct horse battery staple"
SMALL_CHUNKS = ChunkerParams(avg_size=64 * 1024, min_size=16 * 1024, max_size=256 * 1024)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def repo(store: MemoryStore, clock: FakeClock) -> Repository:
    return Repository.init(store, PASS, now=clock.now(), chunker=SMALL_CHUNKS, scrypt_n=2**10)


@pytest.fixture
def progress() -> RecordingProgress:
    return RecordingProgress()


@pytest.fixture
def ctx(progress: RecordingProgress, clock: FakeClock) -> OpContext:
    return OpContext(progress=progress, clock=clock)


@pytest.fixture
def db() -> FakePostgres:
    tables = {"public.runs": 120, "public.artifacts": 40, "public.goose_db_version": 87}
    return FakePostgres("gocdnext", {"gocdnext": FakeDatabaseContents(tables=tables)})


@pytest.fixture
def gocdnext(db: FakePostgres) -> FakeGocdnext:
    """gocdnext's rows in ``db``'s database."""
    return FakeGocdnext(db)
