"""Public in-memory fakes of every port, so users (and our own unit tests) can exercise backup
automation without a database or a bucket: :class:`MemoryStore` (an
:class:`~gocdbackup.ports.ObjectStore`), :class:`FakePostgres` (the generic
:class:`~gocdbackup.ports.Postgres` server, holding :class:`FakeDatabaseContents` by name),
:class:`FakeGocdnext` (gocdnext's rows, :class:`~gocdbackup.ports.GocdnextData`, over the same
server's databases), :class:`FakeClock` and :class:`RecordingProgress`::

    pg = FakePostgres("gocdnext", {"gocdnext": FakeDatabaseContents(tables={"public.runs": 3})})
    take_backup(repo, pg, gocdnext=FakeGocdnext(pg), artifacts=MemoryStore(), ctx=OpContext())

Also re-exports the real helpers for integration tests: :class:`LocalPostgres` (a throwaway
local server), :func:`build_gocdnext_fixture` (a gocdnext-shaped database, every encrypted
column sealed with the key given, one secret being :data:`CANARY_SECRET`, which no output may
ever contain) and :func:`fill_store` (the objects its rows reference, in a real store); and
:func:`sandbox`, all of them together (server, database, filled store, empty repository) to
try gocdbackup on.  :func:`fill_sealed` gives a :class:`FakeDatabaseContents` sealed values.

For Kubernetes: :class:`FakeKubeAPI`, a local API server the real ``kubernetes`` client talks
to (it writes a kubeconfig), and :class:`FakeSecretStore`, the Secrets of one namespace in
memory (a :class:`~gocdbackup.ports.SecretStore`).

For the bucket's own history: :class:`FakeVersionedBucket`, a versioned bucket in memory (a
:class:`~gocdbackup.ports_bucket.VersionedBucket`) whose writes and deletes are stamped by a
clock; :class:`FrozenListing`, a store's listing taken once (what a bucket inventory
knows).
"""

from gocdbackup.drivers.gocdnext_fixture import (
    CANARY_NAME,
    CANARY_SECRET,
    FixtureSpec,
    decrypt_gocdnext,
    encrypt_gocdnext,
)
from gocdbackup.drivers.gocdnext_fixture import build as build_gocdnext_fixture
from gocdbackup.drivers.local_server import LocalPostgres
from gocdbackup.testing.contents import (
    FakeDatabaseContents,
    artifact_objects,
    fake_dump,
    parse_fake_dump,
)
from gocdbackup.testing.context import FakeClock, RecordingProgress
from gocdbackup.testing.databases import FakeGocdnext, FakePostgres, FakeSnapshot
from gocdbackup.testing.kube import FakeKubeAPI
from gocdbackup.testing.listing import FrozenListing
from gocdbackup.testing.sandbox import Sandbox, fill_store, sandbox
from gocdbackup.testing.sealed import fill_sealed
from gocdbackup.testing.secret_store import FakeSecretStore
from gocdbackup.testing.stores import MemoryStore
from gocdbackup.testing.versioned_bucket import FakeVersionedBucket

__all__ = [
    "CANARY_NAME",
    "CANARY_SECRET",
    "FakeClock",
    "FakeDatabaseContents",
    "FakeGocdnext",
    "FakeKubeAPI",
    "FakePostgres",
    "FakeSecretStore",
    "FakeSnapshot",
    "FakeVersionedBucket",
    "FixtureSpec",
    "FrozenListing",
    "LocalPostgres",
    "MemoryStore",
    "RecordingProgress",
    "Sandbox",
    "artifact_objects",
    "build_gocdnext_fixture",
    "decrypt_gocdnext",
    "encrypt_gocdnext",
    "fake_dump",
    "fill_sealed",
    "fill_store",
    "parse_fake_dump",
    "sandbox",
]
