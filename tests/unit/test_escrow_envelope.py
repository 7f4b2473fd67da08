"""The escrow envelope (pure): passphrase and recipient round trips, wrong secrets, tampering,
recipient keys, names, and store locations compared as places."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gocdbackup.errors import (
    ConfigError,
    EscrowDamaged,
    EscrowLocked,
    GocdBackupError,
    UnsupportedFormat,
)
from gocdbackup.gocdnext.secrets import fingerprint
from gocdbackup.model.escrow import (
    MIN_SCRYPT_N,
    Envelope,
    escrow_name,
    open_envelope,
    parse_escrow_name,
    seal_envelope,
)
from gocdbackup.model.escrow_keys import (
    PRIVATE_PREFIX,
    generate_recipient,
    parse_private_key,
    parse_public_key,
    public_key_text,
)
from gocdbackup.model.locations import overlapping, parse_location

NOW = datetime(2025, 1, 31, 12, 0, 5, tzinfo=UTC)
PASS = b"correct horse battery staple"

# one passphrase envelope for the module: scrypt at n=2**15 costs about 0.1 s
KEY = os.urandom(32)
ALICE, BOB, EVE = generate_recipient(), generate_recipient(), generate_recipient()
SEALED = seal_envelope(KEY, now=NOW, passphrase=PASS, recipients=[ALICE[1], BOB[1]])
JSON = SEALED.to_json()


def _doc() -> dict[str, Any]:
    return json.loads(JSON)


def _tampered(path: tuple[str | int, ...], value: object) -> Envelope:
    doc = _doc()
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return Envelope.from_json(json.dumps(doc).encode())


def _flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def test_the_envelope_opens_with_the_passphrase_and_each_recipient() -> None:
    env = Envelope.from_json(JSON)
    assert env == SEALED
    assert open_envelope(env, passphrase=PASS) == KEY
    assert open_envelope(env, private_key=parse_private_key(ALICE[0])) == KEY
    assert open_envelope(env, private_key=parse_private_key(BOB[0])) == KEY
    doc = _doc()
    assert doc["format"] == "gocdbackup-key-escrow"
    assert doc["version"] == 1
    assert doc["fingerprint"] == fingerprint(KEY)
    assert doc["passphrase"]["kdf"] == "scrypt"
    assert doc["passphrase"]["n"] >= 2**15
    assert (doc["passphrase"]["r"], doc["passphrase"]["p"]) == (8, 1)
    assert [r["recipient"] for r in doc["recipients"]] == [ALICE[1], BOB[1]]


def test_the_key_appears_in_no_string_the_envelope_makes() -> None:
    env = Envelope.from_json(JSON)
    texts = [JSON.decode(), repr(env), str(env), repr(env.passphrase), repr(env.recipients)]
    for text in texts:
        assert KEY.hex() not in text.lower()
        assert base64.b64encode(KEY).decode() not in text
    assert ALICE[0].split(":")[1] not in repr(env)


def test_a_wrong_passphrase_or_private_key_is_locked_out() -> None:
    with pytest.raises(EscrowLocked, match="passphrase does not open") as exc:
        open_envelope(SEALED, passphrase=b"wrong horse battery staple")
    assert KEY.hex() not in str(exc.value)
    with pytest.raises(EscrowLocked, match="not one of this escrow's 2 recipient") as exc:
        open_envelope(SEALED, private_key=parse_private_key(EVE[0]))
    assert EVE[1] in str(exc.value)  # the public key that was tried: safe to show
    # with both, whichever opens does
    assert open_envelope(SEALED, passphrase=PASS, private_key=parse_private_key(EVE[0])) == KEY
    only_alice = seal_envelope(KEY, now=NOW, recipients=[ALICE[1]])
    with pytest.raises(EscrowLocked, match="no passphrase"):
        open_envelope(only_alice, passphrase=PASS)


@pytest.mark.parametrize(
    ("path", "value", "opener"),
    [
        (("passphrase", "wrapped"), _flip(_doc()["passphrase"]["wrapped"]), "passphrase"),
        (("recipients", 0, "wrapped"), _flip(_doc()["recipients"][0]["wrapped"]), "alice"),
        (("recipients", 1, "ephemeral"), _flip(_doc()["recipients"][1]["ephemeral"]), "bob"),
        (("fingerprint",), "0123456789abcdef", "passphrase"),
        (("fingerprint",), "0123456789abcdef", "alice"),
        (("created_at",), "2024-01-01T00:00:00+00:00", "bob"),
    ],
)
def test_a_tampered_envelope_is_reported_as_damaged(
    path: tuple[str | int, ...], value: str, opener: str
) -> None:
    env = _tampered(path, value)
    secrets: dict[str, Any] = (
        {"passphrase": PASS}
        if opener == "passphrase"
        else {"private_key": parse_private_key(ALICE[0] if opener == "alice" else BOB[0])}
    )
    with pytest.raises(EscrowDamaged) as exc:
        open_envelope(env, **secrets)
    assert KEY.hex() not in str(exc.value)


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0), new=st.sampled_from('0123456789abcdefABZ+/=:,"{}[] '))
def test_any_changed_character_of_the_envelope_is_a_typed_error_or_harmless(
    position: int, new: str
) -> None:
    text = JSON.decode()
    at = position % len(text)
    changed = (text[:at] + new + text[at + 1 :]).encode()
    outcome: bytes | str
    try:
        outcome = open_envelope(Envelope.from_json(changed), private_key=parse_private_key(BOB[0]))
    except GocdBackupError as exc:
        outcome = str(exc)
    if isinstance(outcome, str):
        assert KEY.hex() not in outcome
    else:
        assert outcome == KEY  # whitespace, or a slot Bob does not use


def test_altered_kdf_parameters_lock_the_escrow_and_absurd_ones_are_refused() -> None:
    with pytest.raises(EscrowLocked, match="altered"):
        open_envelope(
            _tampered(("passphrase", "salt"), _flip(_doc()["passphrase"]["salt"])), passphrase=PASS
        )
    with pytest.raises(EscrowDamaged, match="out of range"):
        open_envelope(_tampered(("passphrase", "n"), 2**30), passphrase=PASS)


def test_what_is_not_an_escrow_is_refused_by_type() -> None:
    with pytest.raises(UnsupportedFormat):
        Envelope.from_json(b"not json")
    with pytest.raises(UnsupportedFormat):
        Envelope.from_json(b'{"format": "something else"}')
    with pytest.raises(UnsupportedFormat, match="version 2"):
        _tampered(("version",), 2)
    with pytest.raises(EscrowDamaged, match="malformed"):
        _tampered(("passphrase", "salt"), "***")
    with pytest.raises(EscrowDamaged):
        _tampered(("fingerprint",), "not hex")


def test_sealing_needs_a_secret_a_long_passphrase_and_a_strong_kdf() -> None:
    with pytest.raises(ConfigError, match="passphrase or recipients"):
        seal_envelope(KEY, now=NOW)
    with pytest.raises(ConfigError, match="at least 12"):
        seal_envelope(KEY, now=NOW, passphrase=b"short")
    with pytest.raises(ConfigError, match="scrypt_n"):
        seal_envelope(KEY, now=NOW, passphrase=PASS, scrypt_n=2**10)
    with pytest.raises(ConfigError, match="32 bytes"):
        seal_envelope(KEY[:16], now=NOW, recipients=[ALICE[1]])
    assert MIN_SCRYPT_N == 2**15


def test_recipient_keys_read_as_base64_or_hex_and_private_keys_are_not_recipients() -> None:
    private, public = generate_recipient()
    assert private.startswith(PRIVATE_PREFIX)
    raw = base64.b64decode(public)
    for text in (public, raw.hex(), raw.hex().upper(), base64.urlsafe_b64encode(raw).decode()):
        assert public_key_text(parse_public_key(text)) == public
    assert public_key_text(parse_private_key(private)) == public
    with pytest.raises(ConfigError, match="this is a private key") as exc:
        parse_public_key(private)
    assert private.split(":")[1] not in str(exc.value)
    with pytest.raises(ConfigError, match="32 bytes") as exc:
        parse_private_key(PRIVATE_PREFIX + "c2hvcnQ=")
    # duplicates are sealed once
    env = seal_envelope(KEY, now=NOW, recipients=[public, raw.hex()])
    assert len(env.recipients) == 1


def test_escrow_names_carry_the_fingerprint_and_utc_time() -> None:
    name = escrow_name("0123456789abcdef", NOW)
    assert name == "gocdnext-key-0123456789abcdef-20250131T120005Z.json"
    assert parse_escrow_name(name) == ("0123456789abcdef", NOW)
    assert parse_escrow_name("prefix/" + name) == ("0123456789abcdef", NOW)
    assert parse_escrow_name("gocdnext-key-xyz.json") is None


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_any_key_round_trips_through_an_envelope(key: bytes) -> None:
    env = Envelope.from_json(seal_envelope(key, now=NOW, recipients=[ALICE[1]]).to_json())
    assert env.fingerprint == fingerprint(key)
    assert open_envelope(env, private_key=parse_private_key(ALICE[0])) == key


@settings(max_examples=3, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_any_key_round_trips_through_a_passphrase_envelope(key: bytes) -> None:
    env = Envelope.from_json(seal_envelope(key, now=NOW, passphrase=PASS).to_json())
    assert open_envelope(env, passphrase=PASS) == key


# -- locations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("s3://bucket/backups", "s3://bucket/backups"),
        ("s3://bucket/backups/", "S3A://BUCKET//backups"),
        ("s3://bucket/backups/escrow", "s3://bucket/backups"),  # inside the repository
        ("s3://bucket", "s3://bucket/backups"),  # around it: the whole bucket
        ("s3://key:secret@bucket/backups/x", "s3://bucket/backups"),
        ("gcs://b/p", "gs://b/p/q"),
        ("file:///srv/backups/escrow", "/srv/backups"),
        ("file:///srv/backups/./escrow/..", "file://localhost/srv/backups"),
        ("memory://repo/escrow", "memory://repo"),
    ],
)
def test_the_same_place_inside_or_around_overlaps(a: str, b: str) -> None:
    assert overlapping(a, b)
    assert overlapping(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("s3://bucket/escrow", "s3://bucket/backups"),  # a sibling prefix
        ("s3://bucket/backups-escrow", "s3://bucket/backups"),  # a prefix, not a folder
        ("s3://other/backups", "s3://bucket/backups"),
        ("gs://bucket/backups", "s3://bucket/backups"),
        ("file:///srv/escrow", "file:///srv/backups"),
    ],
)
def test_other_places_do_not_overlap(a: str, b: str) -> None:
    assert not overlapping(a, b)


def test_a_location_is_shown_without_credentials() -> None:
    assert str(parse_location("s3://AKIA:secret@Bucket/a//b/")) == "s3://bucket/a/b"


def test_every_escrow_error_is_a_gocdbackup_error() -> None:
    assert issubclass(EscrowLocked, GocdBackupError)
    assert issubclass(EscrowDamaged, GocdBackupError)
