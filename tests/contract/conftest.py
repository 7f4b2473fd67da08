"""Backends for the ObjectStore contract suite.

Every test in ``test_object_store.py::TestObjectStoreContract`` runs once per backend:

* ``fake``          ``gocdbackup.testing.MemoryStore``
* ``file-url``      ``FsspecStore("file://<tmp>/repo")``
* ``file-path``     ``FsspecStore("<tmp>/repo")`` (a plain path)
* ``fsspec-memory`` ``FsspecStore("memory://<unique>/repo")``
* ``s3``            moto in server mode, ``s3://<bucket>/repo`` with ``endpoint_url``/``key``/``secret``
* ``s3-root``       "MinIO style": the same server through ``client_kwargs={"endpoint_url": ...}``,
                    rooted at the bucket itself (no prefix)
* ``gcs``           gcp-storage-emulator, ``gs://<bucket>/repo`` with an anonymous token

The servers are subprocesses started once per session, and only when a test needs them.
"""

# ruff: noqa: E402  -- the environment must be set before anything can import gcsfs
from __future__ import annotations

import os
import socket


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# gcsfs 2026.10 turns GCSFileSystem into ExtendedGcsFileSystem unless this is "false" AT IMPORT
# TIME; that class probes a gRPC storage-control API over TLS at the emulator and waits 60 s per
# bucket before falling back (reference/environment.md, section 4).  gcsfs reads
# STORAGE_EMULATOR_HOST whenever it builds a URL, so the emulator's port is chosen here and the
# emulator itself is only started by the ``gcs_server`` fixture.
GCS_PORT = _free_port()
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{GCS_PORT}"
# moto accepts any credentials; botocore just needs some.  No region: with a region in
# client_kwargs s3fs sends a LocationConstraint that moto rejects (environment.md, section 3).
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"

import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest

from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.ports import ObjectStore
from gocdbackup.testing import MemoryStore

BIN = Path(sys.executable).parent
S3_KEY = "testing"
S3_SECRET = "testing"
GCS_OPTIONS: dict[str, Any] = {"project": "test", "token": "anon"}


class EmulatorGcsStore(FsspecStore):
    """gcp-storage-emulator drops a trailing ``\r`` from a body sent as a simple (multipart)
    upload, so about one random blob in 256 comes back a byte short (measured: 6 of 600;
    ``b"hello\r"`` alone shows it). Its resumable-upload path is exact, and real GCS has no
    such bug: against the emulator, whole-object writes take the streaming path."""

    def _write(self, key: str, data: bytes) -> None:
        self.write_stream(key, [data])


BACKENDS = ["fake", "file-url", "file-path", "fsspec-memory", "s3", "s3-root", "gcs"]


def unique_bucket() -> str:
    # S3 and GCS bucket names: 3-63 lower-case letters, digits and dashes
    return f"ct-{uuid.uuid4().hex[:16]}"


def s3_bucket(server: Server, *, versioned: bool = True) -> tuple[FsspecStore, list[str]]:
    """A new bucket on moto (versioning enabled unless told otherwise), a store on it, and
    the CLI's words for it (``--artifacts URL --artifacts-option endpoint_url=…``)."""
    bucket = unique_bucket()
    options = {"endpoint_url": server.endpoint, "key": S3_KEY, "secret": S3_SECRET}
    store = FsspecStore(f"s3://{bucket}", options)
    store.fs.mkdir(bucket)
    if versioned:
        store.fs.call_s3(
            "put_bucket_versioning", Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )
    words = [
        "--artifacts",
        f"s3://{bucket}",
        "--artifacts-option",
        f"endpoint_url={server.endpoint}",
    ]
    return store, words


# -- servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    endpoint: str
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, method: str = "GET") -> bytes:
        req = urllib.request.Request(self.endpoint + path, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return bytes(resp.read())


def _start(argv: list[str], endpoint: str, ready_path: str, log: Path) -> Server:
    """Start ``argv``, wait until ``endpoint + ready_path`` answers 200."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    server = Server(endpoint=endpoint, proc=proc, log=log)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{argv[0]} exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
            )
        try:
            server.get(ready_path)
        except OSError:
            if time.monotonic() > deadline:
                _stop(server)
                raise RuntimeError(f"{argv[0]} did not answer at {endpoint}") from None
            time.sleep(0.05)
        else:
            return server


def _stop(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"  # moto logs every request
    server = _start(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        f"http://127.0.0.1:{port}",
        "/moto-api/",
        log,
    )
    yield server
    _stop(server)


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    import gcsfs.core

    if fsspec.get_filesystem_class("gs") is not gcsfs.core.GCSFileSystem:
        pytest.fail(
            "gcsfs was imported before tests/contract/conftest.py set "
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false; every GCS call would stall for 60 s"
        )
    log = tmp_path_factory.mktemp("gcs") / "gcs.log"
    server = _start(
        [
            str(BIN / "gcp-storage-emulator"),
            "start",
            "-H",
            "127.0.0.1",
            "--port",
            str(GCS_PORT),
            "--in-memory",
        ],
        os.environ["STORAGE_EMULATOR_HOST"],
        "/",
        log,
    )
    yield server
    _stop(server)


# -- backends ---------------------------------------------------------------------------------


@dataclass
class Backend:
    """One ObjectStore implementation at a fresh, empty location."""

    name: str
    store: ObjectStore
    #: a second store object on the same location (another process would build one like this)
    reopen: Callable[[], ObjectStore] | None = None
    #: a store like ``store`` whose bucket was never created (object-store backends only)
    missing_bucket: Callable[[], FsspecStore] | None = None
    #: what ``store.url`` must be exactly
    expected_url: str = ""
    #: credentials handed to the backend, which must never show in its url or repr
    secrets: tuple[str, ...] = ()

    @property
    def is_fsspec(self) -> bool:
        return isinstance(self.store, FsspecStore)


def _fsspec(url: str, options: dict[str, Any] | None = None) -> Callable[[], FsspecStore]:
    kind = EmulatorGcsStore if url.startswith("gs://") else FsspecStore
    return lambda: kind(url, dict(options) if options is not None else None)


def _s3_options(server: Server, *, minio_style: bool) -> dict[str, Any]:
    if minio_style:
        return {
            "client_kwargs": {"endpoint_url": server.endpoint},
            "key": S3_KEY,
            "secret": S3_SECRET,
        }
    return {"endpoint_url": server.endpoint, "key": S3_KEY, "secret": S3_SECRET}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    name: str = request.param
    if name == "fake":
        url = f"memory://fake-{uuid.uuid4().hex[:8]}"
        yield Backend(name=name, store=MemoryStore(url), expected_url=url)
    elif name in ("file-url", "file-path"):
        root = tmp_path / "repo"
        url = f"file://{root}" if name == "file-url" else str(root)
        make = _fsspec(url)
        yield Backend(name=name, store=make(), reopen=make, expected_url=url)
    elif name == "fsspec-memory":
        # fsspec's memory filesystem is one process-wide dict: a unique root per test, removed
        # afterwards (the big-object tests would otherwise pile up in memory)
        url = f"memory://ct-{uuid.uuid4().hex}/repo"
        make = _fsspec(url)
        store = make()
        yield Backend(name=name, store=store, reopen=make, expected_url=url)
        if store.fs.exists(store.root):
            store.fs.rm(store.root, recursive=True)
    elif name in ("s3", "s3-root"):
        server: Server = request.getfixturevalue("moto_server")
        options = _s3_options(server, minio_style=name == "s3-root")
        bucket = unique_bucket()
        url = f"s3://{bucket}/repo" if name == "s3" else f"s3://{bucket}"
        make = _fsspec(url, options)
        store = make()
        store.fs.mkdir(bucket)
        gone = url.replace(bucket, unique_bucket())
        yield Backend(
            name=name,
            store=store,
            reopen=make,
            missing_bucket=_fsspec(gone, options),
            expected_url=url,
            secrets=(S3_SECRET,),
        )
        store.fs.invalidate_cache()
        server.get("/moto-api/reset", method="POST")  # wipe every bucket: keeps moto small
    elif name == "gcs":
        server = request.getfixturevalue("gcs_server")
        bucket = unique_bucket()
        url = f"gs://{bucket}/repo"
        make = _fsspec(url, GCS_OPTIONS)
        store = make()
        store.fs.mkdir(bucket)
        yield Backend(
            name=name,
            store=store,
            reopen=make,
            missing_bucket=_fsspec(f"gs://{unique_bucket()}/repo", GCS_OPTIONS),
            expected_url=url,
        )
        store.fs.invalidate_cache()
        server.get("/wipe")
    else:  # pragma: no cover
        raise AssertionError(name)


@pytest.fixture
def store(backend: Backend) -> ObjectStore:
    return backend.store


# -- fault injection (test_transient_faults.py) -----------------------------------------------

from .faulty_proxy import FaultyProxy


@pytest.fixture
def faulty_proxy(moto_server: Server) -> Iterator[FaultyProxy]:
    """A :class:`FaultyProxy` in front of the moto server that injects nothing until the test
    sets its rates (so the test can create its bucket first); moto is wiped afterwards."""
    with FaultyProxy(moto_server.endpoint, error_rate=0.0) as proxy:
        yield proxy
    moto_server.get("/moto-api/reset", method="POST")
