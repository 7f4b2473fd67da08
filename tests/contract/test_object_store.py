"""The ObjectStore contract: one class, run against every implementation (see conftest.py).

What a backend may not do differently is spelled out here; where a backend cannot tell two
situations apart (a missing bucket vs a missing key), the test says which answer it gives.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gocdbackup.context import OpContext
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.errors import (
    ConfigError,
    GocdBackupError,
    NotFound,
    ObjectMissing,
    RepositoryExists,
    RepositoryNotFound,
    StorageError,
    WrongPassword,
)
from gocdbackup.ports import ObjectInfo, ObjectStore
from gocdbackup.repository import Repository, chunk_stream, read_stream, store_stream

from .conftest import GCS_OPTIONS, S3_KEY, S3_SECRET, Backend, Server, unique_bucket

NOW = datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
PASS = b"pw"
SCRYPT_N = 2**10  # fast key derivation: these tests are about storage, not scrypt
MIB = 1024 * 1024

BLOB_A = "a" * 64
BLOB_B = "ab" + "0" * 62
BLOB_C = "b" * 64
BACKUP_ID = "20261120T003000Z-a3f9c2"
UNSAFE_KEYS = ["../x", "/abs", "a/../b", ""]


def randbytes(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def keys(infos: Iterator[ObjectInfo]) -> list[str]:
    return [i.key for i in infos]


def listed(infos: Iterator[ObjectInfo]) -> list[tuple[str, int]]:
    return [(i.key, i.size_bytes) for i in infos]


def fill(store: ObjectStore) -> dict[str, bytes]:
    """A repository-shaped set of objects, written in no particular order."""
    objects = {
        f"data/bb/{BLOB_C}": b"ccc",
        "config.json": b"{}",
        f"data/aa/{BLOB_A}": b"a" * 10,
        f"backups/{BACKUP_ID}.json": b"manifest",
        f"data/ab/{BLOB_B}": b"",
        "locks/x.json": b"lock!",
    }
    for key, data in objects.items():
        store.write(key, data)
    return objects


class TestObjectStoreContract:
    # -- read / write ------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "data", [b"hello", b"", bytes(range(256))], ids=["small", "empty", "binary"]
    )
    def test_write_then_read_round_trips(self, store: ObjectStore, data: bytes) -> None:
        store.write("obj", data)
        assert store.read("obj") == data
        assert store.exists("obj")
        assert listed(store.list("obj")) == [("obj", len(data))]

    def test_listing_says_when_each_object_was_written(self, store: ObjectStore) -> None:
        before = datetime.now(UTC) - timedelta(minutes=5)  # store clocks may differ a little
        store.write("dated", b"x")
        (info,) = store.list("dated")
        assert info.modified_at is not None
        assert info.modified_at.tzinfo is not None
        assert before <= info.modified_at <= datetime.now(UTC) + timedelta(minutes=5)

    def test_a_5_mib_object_round_trips(self, store: ObjectStore) -> None:
        data = randbytes(5 * MIB)
        store.write("big/object", data)
        assert store.read("big/object") == data
        assert listed(store.list("big/")) == [("big/object", 5 * MIB)]

    def test_nested_keys_round_trip(self, store: ObjectStore) -> None:
        key = f"data/aa/{BLOB_A}"
        store.write(key, b"nested")
        assert store.read(key) == b"nested"

    def test_overwrite_replaces_the_whole_object(self, store: ObjectStore) -> None:
        store.write("obj", b"the first, longer version")
        store.write("obj", b"v2")
        assert store.read("obj") == b"v2"
        assert listed(store.list("")) == [("obj", 2)]

    def test_a_store_object_on_the_same_location_sees_the_same_objects(
        self, backend: Backend
    ) -> None:
        if backend.reopen is None:
            pytest.skip("MemoryStore's objects live in the instance: there is no 'same location'")
        backend.store.write("shared/obj", b"from the first")
        other = backend.reopen()
        assert other.read("shared/obj") == b"from the first"
        other.write("shared/obj", b"from the second")
        assert backend.store.read("shared/obj") == b"from the second"

    def test_keys_with_unusual_characters(self, store: ObjectStore) -> None:
        # characters that are special to URLs, globs or percent-encoding must stay plain text
        odd = ["a b", "a+b", "a%20b", "ü/x", "q?x=1", "h#1", "x*y", "d/[1]"]
        for key in odd:
            store.write(key, key.encode())
        for key in odd:
            assert store.read(key) == key.encode()
            assert store.exists(key)
            assert keys(store.list(key)) == [key]
        assert keys(store.list()) == sorted(odd)
        for key in odd:
            store.delete(key)
        assert list(store.list()) == []

    # -- missing objects ---------------------------------------------------------------------

    def test_reading_a_missing_key_raises_object_missing(self, store: ObjectStore) -> None:
        with pytest.raises(ObjectMissing) as info:
            store.read("no/such/key")
        assert isinstance(info.value, NotFound)
        assert isinstance(info.value, GocdBackupError)
        assert info.value.key == "no/such/key"

    def test_a_prefix_of_other_keys_is_not_an_object(self, store: ObjectStore) -> None:
        # object stores have no directories; a file system's directories must not show through
        store.write("data/aa/obj", b"x")
        for key in ("data", "data/aa"):
            assert not store.exists(key)
            with pytest.raises(ObjectMissing):
                store.read(key)

    def test_exists(self, store: ObjectStore) -> None:
        assert not store.exists("obj")
        store.write("obj", b"")
        assert store.exists("obj")
        assert not store.exists("ob")
        assert not store.exists("obj2")

    # -- list --------------------------------------------------------------------------------

    def test_list_everything_sorted_with_sizes(self, store: ObjectStore) -> None:
        objects = fill(store)
        everything = listed(store.list())
        assert everything == sorted((k, len(v)) for k, v in objects.items())
        assert listed(store.list("")) == everything

    def test_list_with_a_directory_prefix(self, store: ObjectStore) -> None:
        fill(store)
        assert keys(store.list("data/")) == [
            f"data/aa/{BLOB_A}",
            f"data/ab/{BLOB_B}",
            f"data/bb/{BLOB_C}",
        ]
        assert listed(store.list("data/aa/")) == [(f"data/aa/{BLOB_A}", 10)]
        assert keys(store.list("backups/")) == [f"backups/{BACKUP_ID}.json"]

    def test_list_with_a_partial_name_prefix(self, store: ObjectStore) -> None:
        fill(store)
        # part of a directory name, at the top and one level down
        assert keys(store.list("dat")) == [
            f"data/aa/{BLOB_A}",
            f"data/ab/{BLOB_B}",
            f"data/bb/{BLOB_C}",
        ]
        assert keys(store.list("data/a")) == [f"data/aa/{BLOB_A}", f"data/ab/{BLOB_B}"]
        # part of an object name
        assert keys(store.list("data/aa/aaaa")) == [f"data/aa/{BLOB_A}"]
        assert keys(store.list("config")) == ["config.json"]
        assert keys(store.list(f"backups/{BACKUP_ID[:8]}")) == [f"backups/{BACKUP_ID}.json"]
        # a whole key is a prefix of itself
        assert keys(store.list("locks/x.json")) == ["locks/x.json"]

    @pytest.mark.parametrize("prefix", ["nothing/", "nothing", "data/zz/", "data/aa/b", "z"])
    def test_list_with_a_prefix_that_matches_nothing_is_empty(
        self, store: ObjectStore, prefix: str
    ) -> None:
        fill(store)
        assert list(store.list(prefix)) == []

    def test_list_of_an_empty_store_is_empty(self, store: ObjectStore) -> None:
        assert list(store.list()) == []
        assert list(store.list("data/")) == []

    # -- delete ------------------------------------------------------------------------------

    def test_delete_removes_only_that_key(self, store: ObjectStore) -> None:
        objects = fill(store)
        store.delete("config.json")
        assert not store.exists("config.json")
        with pytest.raises(ObjectMissing):
            store.read("config.json")
        assert keys(store.list()) == sorted(set(objects) - {"config.json"})

    def test_delete_of_a_nested_key(self, store: ObjectStore) -> None:
        fill(store)
        store.delete(f"data/aa/{BLOB_A}")
        assert keys(store.list("data/")) == [f"data/ab/{BLOB_B}", f"data/bb/{BLOB_C}"]

    def test_deleting_a_missing_key_is_not_an_error(self, store: ObjectStore) -> None:
        store.delete("never/written")
        store.write("obj", b"x")
        store.delete("obj")
        store.delete("obj")
        assert list(store.list()) == []

    def test_deleting_a_prefix_deletes_no_objects(self, store: ObjectStore) -> None:
        store.write("data/aa/obj", b"x")
        store.delete("data/aa")
        store.delete("data")
        assert keys(store.list()) == ["data/aa/obj"]

    def test_delete_many_removes_exactly_those_keys(self, store: ObjectStore) -> None:
        objects = fill(store)
        extra = [f"run/r{i}/job/j/obj{i}" for i in range(150)]  # more than a GCS batch
        for key in extra:
            store.write(key, key.encode())
        gone = [*extra, "config.json", "never/written"]  # a missing key is no error
        store.delete_many(gone)
        assert keys(store.list()) == sorted(set(objects) - {"config.json"})
        store.delete_many([])

    # -- keys and urls -----------------------------------------------------------------------

    @pytest.mark.parametrize(
        "key", UNSAFE_KEYS, ids=["dotdot", "absolute", "inner-dotdot", "empty"]
    )
    def test_unsafe_keys_are_refused(self, backend: Backend, key: str) -> None:
        store = backend.store
        with pytest.raises(ConfigError, match="unsafe object key"):
            store.write(key, b"x")
        with pytest.raises(ConfigError, match="unsafe object key"):
            store.read(key)
        with pytest.raises(ConfigError, match="unsafe object key"):
            store.exists(key)
        with pytest.raises(ConfigError, match="unsafe object key"):
            store.delete(key)
        assert list(store.list()) == []

    def test_url_is_shown_without_credentials(self, backend: Backend) -> None:
        assert backend.store.url == backend.expected_url
        for secret in backend.secrets:
            assert secret not in backend.store.url
            assert secret not in repr(backend.store)

    # -- a bucket that does not exist --------------------------------------------------------

    def test_a_missing_bucket(self, backend: Backend) -> None:
        """Documented behaviour: s3fs and gcsfs report NoSuchBucket as FileNotFoundError, so the
        driver cannot tell a missing bucket from a missing key on a read: ``read`` raises
        ObjectMissing (a NotFound). A *write* cannot be about a missing key, so it raises
        StorageError. Listing an absent location is empty, as for an empty prefix."""
        if backend.missing_bucket is None:
            pytest.skip(f"{backend.name} has no buckets")
        gone = backend.missing_bucket()
        with pytest.raises(ObjectMissing):
            gone.read("config.json")
        with pytest.raises(StorageError, match="does not exist"):
            gone.write("config.json", b"x")
        assert list(gone.list()) == []
        assert not gone.exists("config.json")
        gone.delete("config.json")
        with pytest.raises(RepositoryNotFound):
            Repository.open(gone, PASS)
        with pytest.raises(StorageError):
            Repository.init(gone, PASS, now=NOW, scrypt_n=SCRYPT_N)

    # -- the repository on this store --------------------------------------------------------

    def test_repository_init_open_and_wrong_passphrase(self, backend: Backend) -> None:
        store = backend.store
        repo = Repository.init(store, PASS, now=NOW, scrypt_n=SCRYPT_N)
        assert keys(store.list()) == ["config.json"]
        again = Repository.open(backend.reopen() if backend.reopen else store, PASS)
        assert again.config == repo.config
        with pytest.raises(WrongPassword):
            Repository.open(store, b"not the passphrase")
        with pytest.raises(RepositoryExists):
            Repository.init(store, PASS, now=NOW, scrypt_n=SCRYPT_N)

    def test_repository_init_refuses_a_location_with_any_object(self, store: ObjectStore) -> None:
        store.write("unrelated/file", b"x")
        with pytest.raises(RepositoryExists):
            Repository.init(store, PASS, now=NOW, scrypt_n=SCRYPT_N)
        assert keys(store.list()) == ["unrelated/file"]

    def test_repository_blob_round_trip(self, backend: Backend) -> None:
        repo = Repository.init(backend.store, PASS, now=NOW, scrypt_n=SCRYPT_N)
        plaintext = b"artefact bytes " * 1000
        blob_id = repo.codec.blob_id(plaintext)
        stored = repo.put_blob(blob_id, plaintext)
        assert repo.get_blob(blob_id) == plaintext
        assert repo.blob_sizes() == {blob_id: stored}
        assert backend.store.exists(f"data/{blob_id[:2]}/{blob_id}")
        if backend.reopen is not None:
            other = Repository.open(backend.reopen(), PASS)
            assert other.get_blob(blob_id) == plaintext

    def test_repository_stream_round_trip(self, backend: Backend) -> None:
        repo = Repository.init(backend.store, PASS, now=NOW, scrypt_n=SCRYPT_N)
        data = randbytes(6 * MIB + 12345, seed=7)
        ctx = OpContext()
        known: dict[str, int] = {}
        component = store_stream(
            repo, chunk_stream(io.BytesIO(data), repo.chunker), kind="dump", known=known, ctx=ctx
        )
        assert component.size_bytes == len(data)
        assert len(component.chunks) > 1
        assert set(repo.blob_sizes()) == {c.blob_id for c in component.chunks}
        back = b"".join(read_stream(repo, component.chunks, ctx))
        assert back == data
        # the same stream again is stored by reference only
        again = store_stream(
            repo,
            chunk_stream(io.BytesIO(data), repo.chunker),
            kind="dump",
            known=repo.blob_sizes(),
            ctx=ctx,
        )
        assert again.chunks == component.chunks
        assert again.reused_bytes == len(data)
        assert again.stored_bytes == 0


# -- credentials in URLs ------------------------------------------------------------------------


def test_s3_credentials_in_the_url_are_used_and_never_shown(moto_server: Server) -> None:
    bucket = unique_bucket()
    url = f"s3://{S3_KEY}:SECRET%2Fwith-slash@{bucket}/p"
    store = FsspecStore(url, {"endpoint_url": moto_server.endpoint})
    assert store.url == f"s3://{bucket}/p"
    for text in (store.url, repr(store), store.root):
        assert "SECRET" not in text
    # the user-info became the key and secret (s3fs itself would take "KEY:SECRET@bucket" for
    # the bucket name, fail every call and quote the secret in its error messages)
    assert store.fs.key == S3_KEY
    assert store.fs.secret == "SECRET/with-slash"
    with pytest.raises(ObjectMissing) as missing:
        store.read("x")
    with pytest.raises(StorageError) as failed:
        store.write("x", b"x")  # the bucket does not exist yet
    for exc in (missing.value, failed.value):
        assert "SECRET" not in str(exc)
        assert "SECRET" not in repr(exc)
    store.fs.mkdir(bucket)
    store.write("x", b"works")
    assert store.read("x") == b"works"


def test_s3_explicit_storage_options_win_over_url_credentials(moto_server: Server) -> None:
    store = FsspecStore(
        f"s3://KEY:SECRET@{unique_bucket()}/p",
        {"endpoint_url": moto_server.endpoint, "key": S3_KEY, "secret": S3_SECRET},
    )
    assert "SECRET" not in store.url
    assert "SECRET" not in repr(store)
    assert store.fs.secret == S3_SECRET


def test_credentials_in_a_url_the_backend_cannot_use_are_refused(gcs_server: Server) -> None:
    with pytest.raises(ConfigError, match="credentials") as info:
        FsspecStore(f"gs://KEY:SECRET@{unique_bucket()}/p", GCS_OPTIONS)
    assert "SECRET" not in str(info.value)


# -- access denied on the file backend --------------------------------------------------------


@pytest.fixture(params=["file-url", "file-path"])
def file_store(request: pytest.FixtureRequest, tmp_path: Path) -> FsspecStore:
    root = tmp_path / "repo"
    return FsspecStore(f"file://{root}" if request.param == "file-url" else str(root))


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="running as root: root ignores permission bits, so chmod 0o500 denies nothing "
    "(see the immutable-directory test for a denial root cannot bypass)",
)
def test_file_access_denied_by_permissions(file_store: FsspecStore) -> None:
    root = Path(file_store.root)
    file_store.write("data/obj", b"x")
    (root / "data").chmod(0o500)
    (root / "data" / "obj").chmod(0)
    try:
        with pytest.raises(StorageError, match="access denied"):
            file_store.write("data/new", b"y")
        with pytest.raises(StorageError, match="access denied"):
            file_store.read("data/obj")
    finally:
        (root / "data").chmod(stat.S_IRWXU)
        (root / "data" / "obj").chmod(stat.S_IRUSR | stat.S_IWUSR)


@pytest.fixture
def immutable_dir(file_store: FsspecStore) -> Iterator[Path]:
    """``data/`` of ``file_store`` with the immutable attribute, which even root cannot bypass."""
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not installed")
    file_store.write("data/obj", b"x")
    path = Path(file_store.root) / "data"
    done = subprocess.run([chattr, "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot set the immutable attribute here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def test_file_access_denied_on_an_immutable_directory(
    file_store: FsspecStore, immutable_dir: Path
) -> None:
    with pytest.raises(StorageError, match="access denied") as info:
        file_store.write("data/new", b"y")
    assert isinstance(info.value.__cause__, PermissionError)
    with pytest.raises(StorageError, match="access denied"):
        file_store.delete("data/obj")
    assert file_store.read("data/obj") == b"x"  # reading is still allowed
    assert [p.name for p in immutable_dir.iterdir()] == ["obj"]  # no temp file left behind


# -- the file backend's own failure modes -----------------------------------------------------


def test_a_permanent_error_is_not_called_transient_because_of_the_key(
    file_store: FsspecStore,
) -> None:
    # "a503" is a file, so "a503/b" cannot be created (EEXIST). The driver used to look for
    # "503" anywhere in the message, path included, and so retried this permanent failure five
    # times (about 3 s) and then called it transient.
    file_store.write("a503", b"x")
    with pytest.raises(StorageError) as info:
        file_store.write("a503/b", b"y")
    assert type(info.value) is StorageError
    assert isinstance(info.value.__cause__, FileExistsError)


def test_a_crashed_writes_temp_file_is_not_listed(file_store: FsspecStore) -> None:
    file_store.write("data/obj", b"x")
    (Path(file_store.root) / "data" / ".gocdbackup-tmp-crashed").write_bytes(b"partial")
    assert keys(file_store.list()) == ["data/obj"]


def test_read_many_answers_what_exists(store: ObjectStore) -> None:
    data = {f"many/{n:02}/obj": os.urandom(n * 100 + 1) for n in range(20)}
    for key, value in data.items():
        store.write(key, value)
    wanted = [(k, None) for k in data] + [("many/absent", None), ("many/00/obj", None)]
    got = store.read_many(wanted)
    assert got == data  # the absent key is left out; a repeated key is read once
    assert store.read_many([]) == {}
    assert store.read_many([("many/absent", None)]) == {}
