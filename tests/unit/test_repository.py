"""The repository format: keys, blobs, manifests, on the in-memory store."""

from __future__ import annotations

import io
import json
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gocdbackup.errors import (
    ConfigError,
    IntegrityError,
    RepositoryExists,
    RepositoryNotFound,
    UnsupportedFormat,
    WrongPassword,
)
from gocdbackup.repository import ChunkerParams, Repository, chunk_bytes, chunk_stream
from gocdbackup.repository.repo import CONFIG_KEY, blob_key
from gocdbackup.testing import FakeClock, MemoryStore

from .conftest import PASS


def test_open_with_the_right_passphrase(store: MemoryStore, repo: Repository) -> None:
    again = Repository.open(store, PASS)
    assert again.config.repo_id == repo.config.repo_id
    blob_id = repo.codec.blob_id(b"hello")
    repo.put_blob(blob_id, b"hello")
    assert again.get_blob(blob_id) == b"hello"


def test_wrong_passphrase_is_refused_and_nothing_written(
    store: MemoryStore, repo: Repository
) -> None:
    before = dict(store.objects)
    with pytest.raises(WrongPassword, match="wrong passphrase"):
        Repository.open(store, b"not it")
    assert store.objects == before


def test_init_refuses_a_non_empty_location(store: MemoryStore, clock: FakeClock) -> None:
    store.write("something/else", b"x")
    with pytest.raises(RepositoryExists, match="not empty"):
        Repository.init(store, PASS, now=clock.now(), scrypt_n=2**10)
    assert list(store.objects) == ["something/else"]


def test_init_refuses_an_empty_passphrase(store: MemoryStore, clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="passphrase"):
        Repository.init(store, b"", now=clock.now(), scrypt_n=2**10)
    assert store.objects == {}


def test_open_where_there_is_no_repository(store: MemoryStore) -> None:
    with pytest.raises(RepositoryNotFound, match="gocdbackup init"):
        Repository.open(store, PASS)


def test_config_holds_no_key_material_in_clear(store: MemoryStore, repo: Repository) -> None:
    config = json.loads(store.read(CONFIG_KEY))
    assert config["kind"] == "gocdbackup.repository"
    raw = repo.codec._aead  # the live key is not in the file in any form
    assert raw is not None
    text = store.read(CONFIG_KEY)
    assert PASS not in text


def test_future_repository_format_is_refused(store: MemoryStore, repo: Repository) -> None:
    config = json.loads(store.read(CONFIG_KEY))
    config["format_version"] = 99
    store.write(CONFIG_KEY, json.dumps(config).encode())
    with pytest.raises(UnsupportedFormat, match="upgrade"):
        Repository.open(store, PASS)


def test_blob_ids_are_keyed_not_plain_hashes(repo: Repository, store: MemoryStore) -> None:
    import hashlib

    data = os.urandom(1000)
    blob_id = repo.codec.blob_id(data)
    assert blob_id != hashlib.sha256(data).hexdigest()
    repo.put_blob(blob_id, data)
    assert data not in store.read(blob_key(blob_id))  # encrypted at rest


def test_corrupted_blob_is_detected(repo: Repository, store: MemoryStore) -> None:
    blob_id = repo.codec.blob_id(b"payload" * 100)
    repo.put_blob(blob_id, b"payload" * 100)
    store.corrupt(blob_key(blob_id))
    with pytest.raises(IntegrityError, match="fails authentication"):
        repo.get_blob(blob_id)


def test_blob_moved_under_another_name_is_detected(repo: Repository, store: MemoryStore) -> None:
    a, b = b"a" * 100, b"b" * 100
    ida, idb = repo.codec.blob_id(a), repo.codec.blob_id(b)
    repo.put_blob(ida, a)
    repo.put_blob(idb, b)
    store.write(blob_key(ida), store.read(blob_key(idb)))
    with pytest.raises(IntegrityError):
        repo.get_blob(ida)


def test_missing_blob_is_an_integrity_error(repo: Repository) -> None:
    with pytest.raises(IntegrityError, match="missing"):
        repo.get_blob("ab" * 32)


def test_repr_shows_no_keys(repo: Repository) -> None:
    assert "redacted" in repr(repo.codec)
    assert repo.codec._id_key.hex() not in repr(repo)


@given(st.integers(min_value=0, max_value=3 * 16 * 1024), st.integers(min_value=0, max_value=9))
@settings(max_examples=60, deadline=None)
def test_chunk_bytes_cuts_exactly_as_chunk_stream(size: int, seed: int) -> None:
    params = ChunkerParams(avg_size=16 * 1024, min_size=8 * 1024, max_size=32 * 1024)
    data = random.Random(seed).randbytes(size)
    assert list(chunk_bytes(data, params)) == list(chunk_stream(io.BytesIO(data), params))
