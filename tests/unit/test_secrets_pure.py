"""The application key's pure parts: validation exactly as gocdnext reads it, the fingerprint,
the cipher helpers, and the decrypt check's verdicts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gocdbackup.credentials import application_key, given_key
from gocdbackup.errors import ConfigError
from gocdbackup.gocdnext.cipher import encrypt, opener, parse_key, sealer
from gocdbackup.gocdnext.secrets import ENCRYPTED_COLUMNS, fingerprint
from gocdbackup.model.secrets import CheckTally, SealedValue, SecretsCheck

KEY = bytes(range(32))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (KEY.hex() + "\n", "newline"),
        (KEY.hex()[:-2], "it has 62"),
        (KEY.hex() + "00", "it has 66"),
        ("zz" + KEY.hex()[2:], "other characters"),
        (" " + KEY.hex()[1:], "other characters"),
    ],
)
def test_the_key_is_read_as_gocdnext_reads_it(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as info:
        parse_key(text)
    assert text.strip() not in str(info.value)  # the value is never echoed


def test_a_key_file_may_end_with_one_newline_the_variable_may_not(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text(KEY.hex().upper() + "\n")
    assert application_key(file=str(f)) == KEY
    f.write_text(KEY.hex() + "\n\n")
    with pytest.raises(ConfigError, match="newline"):
        application_key(file=str(f))
    with pytest.raises(ConfigError, match="newline"):
        application_key(env=KEY.hex() + "\n")


def test_no_key_given_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOCDNEXT_SECRET_KEY", raising=False)
    assert given_key() is None
    monkeypatch.setenv("GOCDNEXT_SECRET_KEY", KEY.hex())
    assert given_key() == KEY


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_fingerprints_name_keys_and_do_not_reveal_them(a: bytes, b: bytes) -> None:
    assert fingerprint(a) == fingerprint(a)
    assert len(fingerprint(a)) == 16
    assert a.hex()[:16] != fingerprint(a) or a == b"\x00" * 32
    if a != b:
        assert fingerprint(a) != fingerprint(b)


@given(st.binary(max_size=200))
def test_sealed_values_open_with_their_key_only(plaintext: bytes) -> None:
    other = os.urandom(32)
    blob = sealer(KEY)(plaintext)
    assert opener(KEY)(blob) == plaintext
    assert opener(other)(blob) is None
    assert opener(KEY)(encrypt(KEY, plaintext)) == plaintext
    assert opener(KEY)(blob[:27]) is None  # truncated below nonce + tag


def _value(column: str, n: int, blob: bytes | None) -> SealedValue:
    return SealedValue(column=column, row_key=str(n), blob=blob)


def counted(
    columns: list[str],
    outcomes: list[tuple[SealedValue, bool | None]],
    *,
    fingerprint: str,
    absent: tuple[str, ...] = (),
) -> SecretsCheck:
    """The check of ``(value, opened)`` outcomes (``opened`` None: no value), counted as the
    decrypt check counts them."""
    counts = CheckTally.of(columns)
    for value, opened in outcomes:
        if opened is None:
            counts.add(value.column, empty=1)
        elif opened:
            counts.add(value.column, ok=1)
        else:
            counts.add(value.column, failing=[value.where])
    return counts.result(fingerprint=fingerprint, absent=absent)


def test_wrong_key_is_told_from_damaged_rows() -> None:
    names = [c.name for c in ENCRYPTED_COLUMNS]
    wrong = counted(
        names, [(_value("secrets.value_enc", n, b"x"), False) for n in range(5)], fingerprint="ab"
    )
    assert wrong.wrong_key
    assert "WRONG KEY" in wrong.verdict()
    damaged = counted(
        names,
        [
            (_value("secrets.value_enc", 1, b"x"), False),
            (_value("clusters.credential_enc", 2, b"y"), True),
            (_value("secrets.value_enc", 3, None), None),
        ],
        fingerprint="ab",
        absent=("scm_sources.webhook_secret",),
    )
    assert not damaged.wrong_key
    assert (damaged.ok, damaged.failed, damaged.empty) == (1, 1, 1)
    columns = {c.column: c for c in damaged.columns}
    assert columns["secrets.value_enc"].failing == ("secrets.value_enc 1",)
    assert not columns["scm_sources.webhook_secret"].present
    assert "damaged" in repr(damaged)
    assert "<table>" in damaged._repr_html_()
    assert damaged.summary()["columns"]["secrets.value_enc"]["failed"] == 1
