"""Finding gocdnext's artefact store from platform_settings, with its sealed credentials."""

from __future__ import annotations

import json
import os

import pytest

from gocdbackup.credentials import application_key
from gocdbackup.errors import ConfigError
from gocdbackup.gocdnext import cipher as gocdnext_cipher
from gocdbackup.gocdnext.storage import store_location
from gocdbackup.ops.discovery import discover_artifact_store
from gocdbackup.testing import FakeGocdnext, FakePostgres

KEY = os.urandom(32)
SECRET = "wJalrXUtnFEMI-very-secret"


def sealed(creds: dict[str, str], key: bytes = KEY) -> bytes:
    return gocdnext_cipher.encrypt(key, json.dumps(creds).encode())


def test_s3_with_endpoint_path_style_and_credentials() -> None:
    db = FakeGocdnext(FakePostgres())
    db.setting = (
        {
            "backend": "s3",
            "bucket": "ci-artifacts",
            "region": "eu-west-1",
            "endpoint": "http://minio:9000",
            "use_path_style": True,
        },
        sealed({"access_key": "AKIA1", "secret_key": SECRET}),
    )
    loc = discover_artifact_store(db, gocdnext_cipher.decryptor(KEY))
    assert loc.url == "s3://ci-artifacts"
    assert loc.options == {
        "endpoint_url": "http://minio:9000",
        "client_kwargs": {"region_name": "eu-west-1"},
        "config_kwargs": {"s3": {"addressing_style": "path"}},
        "key": "AKIA1",
        "secret": SECRET,
    }
    assert SECRET not in repr(loc)


def test_gcs_and_filesystem() -> None:
    gcs = store_location(
        {"backend": "gcs", "bucket": "b", "project_id": "p"},
        {"service_account_json": '{"type": "service_account"}'},
        fs_root="/x",
    )
    assert (gcs.url, gcs.options) == (
        "gs://b",
        {"project": "p", "token": {"type": "service_account"}},
    )
    fs = store_location({"backend": "filesystem"}, None, fs_root="/var/lib/gocdnext/artifacts")
    assert fs.url == "file:///var/lib/gocdnext/artifacts"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"backend": "s3"}, "no bucket"),
        ({"backend": "azure", "bucket": "x"}, "unknown artefact backend"),
    ],
)
def test_bad_settings(setting: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        store_location(setting, None, fs_root="/x")


def test_wrong_key_says_so_and_shows_nothing() -> None:
    db = FakeGocdnext(FakePostgres())
    db.setting = (
        {"backend": "s3", "bucket": "b"},
        sealed({"access_key": "a", "secret_key": SECRET}),
    )
    other = os.urandom(32)
    with pytest.raises(ConfigError, match="does not decrypt") as info:
        discover_artifact_store(db, gocdnext_cipher.decryptor(other))
    assert other.hex() not in str(info.value)
    assert SECRET not in str(info.value)


def test_no_setting_row() -> None:
    with pytest.raises(ConfigError, match="pass the store URL"):
        discover_artifact_store(FakeGocdnext(FakePostgres()), gocdnext_cipher.decryptor(KEY))


@pytest.mark.parametrize("bad", ["", "abc", "zz" * 32, KEY.hex() + "00", KEY.hex() + " "])
def test_key_format(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        application_key(env=bad)
    assert bad.strip() == "" or bad not in str(info.value)


def test_key_from_file_tolerates_one_newline(tmp_path: object) -> None:
    from pathlib import Path

    f = Path(str(tmp_path)) / "key"
    f.write_text(KEY.hex() + "\n")
    assert application_key(file=str(f)) == KEY
    assert application_key(env=KEY.hex().upper()) == KEY
