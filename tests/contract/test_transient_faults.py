"""Transient storage errors are retried in the driver, so operations survive a flaky S3.

The S3 repository is reached through :class:`~tests.contract.faulty_proxy.FaultyProxy`, which
answers a seeded share of requests with ``503 SlowDown`` or resets the connection.  Three layers
may retry a failed request:

* aiohttp: once, at once, for an idempotent request (GET, HEAD, PUT, DELETE) whose connection
  dropped (RFC 9112 section 9.3.1); it does not log, so its share is what the others leave;
* botocore (legacy mode: 5 attempts, random exponential backoff): 5xx, throttling, connection
  errors;
* s3fs (``S3FileSystem.retries = 5``): ``SlowDown`` and connection-level errors;
* our driver (stamina, 5 attempts / 60 s, on :class:`~gocdbackup.errors.TransientStorageError`).

``retries`` counts what botocore, s3fs and stamina did, so a test can say who absorbed what.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import stamina
import stamina.instrumentation

from gocdbackup.context import OpContext, SystemClock
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.errors import GocdBackupError, StorageError, TransientStorageError
from gocdbackup.ops import restore_backup, take_backup, verify_repository
from gocdbackup.repository import ChunkerParams, Repository
from gocdbackup.testing import FakeDatabaseContents, FakePostgres

from .conftest import S3_KEY, S3_SECRET, unique_bucket
from .faulty_proxy import FaultyProxy

PASS = b"pw"
SMALL_CHUNKS = ChunkerParams(avg_size=64 * 1024, min_size=16 * 1024, max_size=256 * 1024)
MIB = 1024 * 1024
TABLES = {"public.runs": 120, "public.artifacts": 40, "public.goose_db_version": 87}


# -- helpers ----------------------------------------------------------------------------------


@dataclass
class RetryCounts:
    #: botocore's "Retry needed" decisions
    botocore: int = 0
    #: errors s3fs judged retryable: a retry, unless it was s3fs's last attempt
    s3fs: int = 0
    #: retries our driver scheduled
    stamina: int = 0
    #: the exceptions stamina retried on, by their text
    stamina_causes: list[str] | None = None


class _Counter(logging.Handler):
    def __init__(self, counts: RetryCounts) -> None:
        super().__init__(logging.DEBUG)
        self.counts = counts

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.name.startswith(("botocore", "aiobotocore")) and msg.startswith("Retry needed"):
            self.counts.botocore += 1
        elif record.name == "s3fs" and (
            msg.startswith("Retryable error")
            or (msg.startswith("Client error (maybe retryable)") and "SlowDown" in msg)
        ):
            self.counts.s3fs += 1


@pytest.fixture
def retries() -> Iterator[RetryCounts]:
    """Counts the retries of each layer: botocore's and s3fs's from their debug logs (only those
    two loggers are turned up), ours from a stamina on-retry hook."""
    counts = RetryCounts(stamina_causes=[])

    def on_retry(details: stamina.instrumentation.RetryDetails) -> None:
        counts.stamina += 1
        assert counts.stamina_causes is not None
        counts.stamina_causes.append(f"{type(details.caused_by).__name__}: {details.caused_by}")

    handler = _Counter(counts)
    names = ["botocore.retryhandler", "botocore.retries.standard", "s3fs"]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.addHandler(handler)
    hooks = stamina.instrumentation.get_on_retry_hooks()
    stamina.instrumentation.set_on_retry_hooks([*hooks, on_retry])
    try:
        yield counts
    finally:
        stamina.instrumentation.set_on_retry_hooks(hooks)
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


def s3_store(proxy: FaultyProxy, bucket: str, *, vendor_retries: bool = True) -> FsspecStore:
    """An S3 store reached through ``proxy``.  ``vendor_retries=False`` turns botocore's and
    s3fs's own retries off, so that only the driver's stamina retries are left."""
    options: dict[str, Any] = {
        "endpoint_url": proxy.endpoint,
        "key": S3_KEY,
        "secret": S3_SECRET,
        "skip_instance_cache": True,  # the s3fs knobs below must not leak into other tests
    }
    if not vendor_retries:
        # legacy mode's "max_attempts" counts retries; "total_max_attempts" counts attempts
        options["config_kwargs"] = {"retries": {"total_max_attempts": 1}}
    store = FsspecStore(f"s3://{bucket}/repo", options)
    if not vendor_retries:
        store.fs.retries = 1  # s3fs has no constructor argument for it
    return store


def new_bucket(proxy: FaultyProxy) -> str:
    bucket = unique_bucket()
    s3_store(proxy, bucket).fs.mkdir(bucket)  # before any fault is switched on
    return bucket


def database() -> FakePostgres:
    # ~8 MiB of incompressible dump: about 130 chunks of 64 KiB
    return FakePostgres(
        "gocdnext", {"gocdnext": FakeDatabaseContents(tables=dict(TABLES), payload_bytes=8 * MIB)}
    )


def backup_verify_restore(store: FsspecStore) -> tuple[int, int]:
    """init, backup, verify every byte, restore; ``(chunks written, chunks read by verify)``."""
    ctx = OpContext(clock=SystemClock())
    repo = Repository.init(store, PASS, now=datetime.now(UTC), chunker=SMALL_CHUNKS, scrypt_n=2**10)
    db = database()
    backup = take_backup(repo, db, ctx=ctx)
    chunks = len(backup.components[0].chunks)
    assert chunks >= 48, chunks

    reopened = Repository.open(store, PASS)
    assert reopened.backup_ids() == [backup.id]
    report = verify_repository(reopened, ctx=ctx, read_data_percent=100)
    assert report.ok, report.summary()
    (check,) = report.checks
    assert check.chunks_read == chunks

    restore_backup(reopened, db, backup.id, confirm=backup.id, ctx=ctx, target="restored")
    restored = db.databases["restored"]
    assert restored.tables == TABLES
    assert restored.goose == db.databases["gocdnext"].goose
    return chunks, check.chunks_read


def assert_clean(proxy: FaultyProxy) -> None:
    assert proxy.stats.over_limit == 0, proxy.stats
    assert proxy.stats.upstream_errors == 0, proxy.stats


# -- a flaky store: the operations finish -----------------------------------------------------


@pytest.mark.slow
def test_a_backup_finishes_through_5_percent_injected_503s(
    faulty_proxy: FaultyProxy, retries: RetryCounts
) -> None:
    store = s3_store(faulty_proxy, new_bucket(faulty_proxy))
    faulty_proxy.set_rates(error_rate=0.05)

    backup_verify_restore(store)

    stats = faulty_proxy.stats
    print(stats, retries)
    assert stats.requests >= 300, stats
    assert stats.injected_503 >= 5, stats
    assert_clean(faulty_proxy)
    # every injected 503 was retried by some layer (the operations all succeeded); with the
    # vendor defaults botocore absorbs nearly all of them before s3fs or stamina see anything
    assert retries.botocore + retries.s3fs + retries.stamina >= stats.injected_503, retries


@pytest.mark.slow
def test_a_backup_finishes_through_connection_resets_and_lost_responses(
    faulty_proxy: FaultyProxy, retries: RetryCounts
) -> None:
    """2 % of the requests are reset before they reach S3, 1 % after S3 applied them (the
    client cannot tell whether its PUT or DELETE happened): retrying is still safe, because
    every write is a whole object under a content- or id-derived key."""
    store = s3_store(faulty_proxy, new_bucket(faulty_proxy))
    faulty_proxy.set_rates(reset_rate=0.02, lost_response_rate=0.01)

    backup_verify_restore(store)

    stats = faulty_proxy.stats
    print(stats, retries)
    assert stats.resets + stats.lost_responses >= 5, stats
    assert_clean(faulty_proxy)
    # aiohttp retries an idempotent request on a dropped connection once, so most resets never
    # reach botocore; a second reset in a row does (and is retried there)
    assert retries.botocore + retries.s3fs + retries.stamina <= stats.faults, retries


@pytest.mark.slow
def test_with_vendor_retries_off_the_drivers_stamina_retries_absorb_every_fault(
    faulty_proxy: FaultyProxy, retries: RetryCounts
) -> None:
    """botocore and s3fs make one attempt each: every 503 reaches the driver, and so does a
    dropped connection that aiohttp's one retry does not save.  The driver must classify both
    as transient (s3fs's ``OSError(EBUSY, "Please reduce your request rate.")``, botocore's
    ``EndpointConnectionError``) and retry them with stamina."""
    store = s3_store(faulty_proxy, new_bucket(faulty_proxy), vendor_retries=False)
    faulty_proxy.set_rates(error_rate=0.03, reset_rate=0.01, lost_response_rate=0.01)

    backup_verify_restore(store)

    stats = faulty_proxy.stats
    print(stats, retries)
    assert stats.injected_503 >= 5, stats
    assert_clean(faulty_proxy)
    assert retries.botocore == 0, retries
    # a 503 fails its attempt at once and stamina retries that attempt: one retry per 503, plus
    # one per connection that dropped twice in a row
    assert stats.injected_503 <= retries.stamina <= stats.faults, (retries, stats)
    assert retries.stamina_causes is not None
    assert all(c.startswith("TransientStorageError") for c in retries.stamina_causes)


# -- a store that never recovers: a gocdbackup error, soon ------------------------------------


@pytest.fixture
def no_backoff() -> Iterator[None]:
    """stamina's testing mode: 5 attempts as configured, without waiting between them."""
    with stamina.set_testing(True, attempts=5):
        yield


@pytest.mark.usefixtures("no_backoff")
def test_a_store_that_always_answers_503_fails_with_a_storage_error(
    faulty_proxy: FaultyProxy, retries: RetryCounts
) -> None:
    bucket = new_bucket(faulty_proxy)
    store = s3_store(faulty_proxy, bucket, vendor_retries=False)
    repo = Repository.init(store, PASS, now=datetime.now(UTC), chunker=SMALL_CHUNKS, scrypt_n=2**10)
    faulty_proxy.set_rates(error_rate=1.0)

    started = time.monotonic()
    with pytest.raises(TransientStorageError, match="reduce your request rate") as caught:
        store.write("config.json", b"x")
    assert isinstance(caught.value, StorageError)
    assert faulty_proxy.stats.injected_503 == 5  # stamina's 5 attempts, one request each
    assert retries.stamina == 4

    # exists() must not answer "no" when it cannot know (fsspec's isfile() says False on a 503)
    store.fs.invalidate_cache()
    with pytest.raises(TransientStorageError):
        store.exists("config.json")
    with pytest.raises(TransientStorageError):
        store.read("config.json")
    with pytest.raises(TransientStorageError):
        list(store.list("backups/"))

    # a whole operation ends in a gocdbackup error too, not a vendor exception or a hang
    with pytest.raises(GocdBackupError) as op_error:
        take_backup(repo, database(), ctx=OpContext(clock=SystemClock()))
    assert isinstance(op_error.value, StorageError), repr(op_error.value)
    assert time.monotonic() - started < 15
    assert_clean(faulty_proxy)


@pytest.mark.usefixtures("no_backoff")
def test_a_store_that_always_resets_fails_with_a_storage_error(
    faulty_proxy: FaultyProxy, retries: RetryCounts
) -> None:
    store = s3_store(faulty_proxy, new_bucket(faulty_proxy), vendor_retries=False)
    store.write("obj", b"x")
    faulty_proxy.set_rates(reset_rate=1.0)
    started = time.monotonic()
    for call in (lambda: store.read("obj"), lambda: store.write("obj", b"y")):
        with pytest.raises(TransientStorageError):
            call()
    # each of stamina's 5 attempts is 2 requests: aiohttp retries a dropped idempotent request
    assert faulty_proxy.stats.resets == 2 * 5 * 2
    assert retries.stamina == 2 * 4
    assert time.monotonic() - started < 15


@pytest.mark.usefixtures("no_backoff")
def test_a_read_outage_on_a_bucket_root_repository_is_an_error_not_an_empty_repository(
    faulty_proxy: FaultyProxy,
) -> None:
    """A repository rooted at the bucket itself (no prefix, "MinIO style").  s3fs's
    ``exists(bucket)`` answers False on ANY error of its bucket probes, so a listing that asked
    it first was silently empty during an outage: verify reported "ok" with nothing checked,
    and init saw an "empty" location where a repository is (and would replace its config)."""
    bucket = new_bucket(faulty_proxy)
    options: dict[str, Any] = {
        "client_kwargs": {"endpoint_url": faulty_proxy.endpoint},
        "key": S3_KEY,
        "secret": S3_SECRET,
        "config_kwargs": {"retries": {"total_max_attempts": 1}},
        "skip_instance_cache": True,
    }
    store = FsspecStore(f"s3://{bucket}", options)
    store.fs.retries = 1
    ctx = OpContext(clock=SystemClock())
    repo = Repository.init(store, PASS, now=datetime.now(UTC), scrypt_n=2**10)
    take_backup(
        repo,
        FakePostgres("gocdnext", {"gocdnext": FakeDatabaseContents(payload_bytes=1000)}),
        ctx=ctx,
    )

    faulty_proxy.set_rates(error_rate=1.0, fault_methods=frozenset({"GET", "HEAD"}))
    store.fs.invalidate_cache()
    with pytest.raises(TransientStorageError):
        list(store.list(""))
    with pytest.raises(TransientStorageError):
        verify_repository(repo, ctx=ctx)
    with pytest.raises(TransientStorageError):
        Repository.init(store, b"another", now=datetime.now(UTC), scrypt_n=2**10)

    faulty_proxy.set_rates()
    assert Repository.open(store, PASS).config == repo.config  # untouched
