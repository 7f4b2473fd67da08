"""The escrow envelope of gocdnext's application key (``GOCDNEXT_SECRET_KEY``): the key sealed
with AES-256-GCM for a passphrase (scrypt) and/or X25519 recipients (an ephemeral key and
HKDF-SHA256 per recipient, keys in :mod:`~gocdbackup.model.escrow_keys`), with the key's
fingerprint in clear so the right escrow can be found; and the names escrows are stored
under.

Pure: randomness from the operating system, no clock (``now`` is an argument), no I/O.  The
key never appears in a repr, a message or the JSON; docs/secrets.md ("Escrow") documents the
format for operators."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from attrs import field, frozen
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from gocdbackup.errors import (
    ConfigError,
    EscrowDamaged,
    EscrowLocked,
    GocdBackupError,
    UnsupportedFormat,
)
from gocdbackup.gocdnext.secrets import fingerprint
from gocdbackup.model.escrow_keys import b64, parse_public_key, public_raw

FORMAT = "gocdbackup-key-escrow"
VERSION = 1
#: scrypt cost: at least 2**15 (32 MiB, about 0.1 s), at most 2**20 (1 GiB) when reading
MIN_SCRYPT_N = 2**15
MAX_SCRYPT_N = 2**20
MIN_PASSPHRASE = 12
_HKDF_INFO = b"gocdbackup key escrow v1 x25519"
_NAME = re.compile(r"^gocdnext-key-([0-9a-f]{16})-(\d{8}T\d{6}Z)\.json$")
_NAME_TIME = "%Y%m%dT%H%M%SZ"
_WRAPPED_LEN = 12 + 32 + 16


# -- the envelope ------------------------------------------------------------------------------


@frozen(kw_only=True)
class PassphraseSlot:
    """The key sealed under a key derived from a passphrase by scrypt.  ``check`` is derived
    with the wrapping key: it tells a wrong passphrase from a damaged envelope."""

    salt: bytes
    n: int
    r: int
    p: int
    check: bytes = field(repr=False)
    wrapped: bytes = field(repr=False)  # nonce(12) || AES-256-GCM(key) || tag(16)


@frozen(kw_only=True)
class RecipientSlot:
    """The key sealed for one X25519 public key (``recipient``) through an ephemeral key."""

    recipient: bytes  # the recipient's raw public key
    ephemeral: bytes  # the ephemeral raw public key
    wrapped: bytes = field(repr=False)

    @property
    def recipient_text(self) -> str:
        return b64(self.recipient)


@frozen(kw_only=True)
class Envelope:
    """An escrow of one application key: its fingerprint and time in clear, the key sealed in
    each slot (the header is the associated data of every seal, so it cannot be altered)."""

    fingerprint: str
    created_at: datetime
    passphrase: PassphraseSlot | None = None
    recipients: tuple[RecipientSlot, ...] = ()
    version: int = VERSION

    def _aad(self, slot: str) -> bytes:
        header = f"{FORMAT}\n{self.version}\n{self.fingerprint}\n{self.created_at.isoformat()}\n"
        return (header + slot).encode()

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": self.version,
            "key": "GOCDNEXT_SECRET_KEY",
            "fingerprint": self.fingerprint,
            "created_at": self.created_at.isoformat(),
            "cipher": "AES-256-GCM",
        }
        if self.passphrase is not None:
            s = self.passphrase
            doc["passphrase"] = {
                "kdf": "scrypt",
                "n": s.n,
                "r": s.r,
                "p": s.p,
                "salt": b64(s.salt),
                "check": b64(s.check),
                "wrapped": b64(s.wrapped),
            }
        doc["recipients"] = [
            {
                "kind": "x25519-hkdf-sha256",
                "recipient": b64(r.recipient),
                "ephemeral": b64(r.ephemeral),
                "wrapped": b64(r.wrapped),
            }
            for r in self.recipients
        ]
        return (json.dumps(doc, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise UnsupportedFormat("not a gocdbackup key escrow (not JSON)") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise UnsupportedFormat("not a gocdbackup key escrow")
        version = doc.get("version")
        if version != VERSION:
            raise UnsupportedFormat(
                f"key escrow version {version!r}: this gocdbackup reads version {VERSION}"
            )
        try:
            return cls._from_doc(doc)
        except GocdBackupError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise EscrowDamaged(f"the key escrow is malformed ({type(exc).__name__})") from None

    @classmethod
    def _from_doc(cls, doc: dict[str, Any]) -> Envelope:
        fp = str(doc["fingerprint"])
        if not re.fullmatch(r"[0-9a-f]{16}", fp):
            raise EscrowDamaged("the key escrow's fingerprint is malformed")
        created = datetime.fromisoformat(str(doc["created_at"]))
        slot = doc.get("passphrase")
        passphrase = None
        if slot is not None:
            if slot.get("kdf") != "scrypt":
                raise UnsupportedFormat(f"unsupported key derivation {slot.get('kdf')!r}")
            passphrase = PassphraseSlot(
                salt=_unb64(slot["salt"]),
                n=int(slot["n"]),
                r=int(slot["r"]),
                p=int(slot["p"]),
                check=_unb64(slot["check"]),
                wrapped=_unb64(slot["wrapped"]),
            )
        recipients = []
        for r in doc.get("recipients") or ():
            if r.get("kind") != "x25519-hkdf-sha256":
                raise UnsupportedFormat(f"unsupported recipient kind {r.get('kind')!r}")
            recipients.append(
                RecipientSlot(
                    recipient=_unb64(r["recipient"]),
                    ephemeral=_unb64(r["ephemeral"]),
                    wrapped=_unb64(r["wrapped"]),
                )
            )
        return cls(
            fingerprint=fp,
            created_at=created,
            passphrase=passphrase,
            recipients=tuple(recipients),
        )


def _unb64(value: Any) -> bytes:
    return base64.b64decode(str(value), validate=True)


def _derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> tuple[bytes, bytes]:
    """(wrapping key, check) from one scrypt derivation."""
    out = Scrypt(salt=salt, length=48, n=n, r=r, p=p).derive(passphrase)
    return out[:32], out[32:]


def _wrap_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_HKDF_INFO)
    return hkdf.derive(shared)


def _seal(wrapping: bytes, key: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(wrapping).encrypt(nonce, key, aad)


def seal_envelope(
    key: bytes,
    *,
    now: datetime,
    passphrase: bytes | None = None,
    recipients: Sequence[str] = (),
    scrypt_n: int = MIN_SCRYPT_N,
) -> Envelope:
    """``key`` sealed for ``passphrase`` and/or each of ``recipients`` (public keys, base64 or
    hex), stamped ``now``."""
    if len(key) != 32:
        raise ConfigError("the application key must be 32 bytes")
    if passphrase is None and not recipients:
        raise ConfigError("an escrow needs a passphrase or recipients=[public key, ...]")
    if passphrase is not None and len(passphrase) < MIN_PASSPHRASE:
        raise ConfigError(f"the escrow passphrase must be at least {MIN_PASSPHRASE} characters")
    if not MIN_SCRYPT_N <= scrypt_n <= MAX_SCRYPT_N or scrypt_n & (scrypt_n - 1):
        raise ConfigError("scrypt_n must be a power of two from 2**15 to 2**20")
    publics = list(dict.fromkeys(public_raw(parse_public_key(r)) for r in recipients))
    env = Envelope(fingerprint=fingerprint(key), created_at=now.astimezone(UTC))
    slot = None
    if passphrase is not None:
        salt = os.urandom(16)
        wrapping, check = _derive(passphrase, salt, scrypt_n, 8, 1)
        wrapped = _seal(wrapping, key, env._aad("passphrase"))
        slot = PassphraseSlot(salt=salt, n=scrypt_n, r=8, p=1, check=check, wrapped=wrapped)
    slots = []
    for public in publics:
        ephemeral = X25519PrivateKey.generate()
        eph_raw = public_raw(ephemeral.public_key())
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public))
        wrapped = _seal(_wrap_key(shared, eph_raw, public), key, env._aad("x25519\n" + b64(public)))
        slots.append(RecipientSlot(recipient=public, ephemeral=eph_raw, wrapped=wrapped))
    return Envelope(
        fingerprint=env.fingerprint,
        created_at=env.created_at,
        passphrase=slot,
        recipients=tuple(slots),
    )


def _unseal(wrapping: bytes, wrapped: bytes, aad: bytes) -> bytes:
    if len(wrapped) != _WRAPPED_LEN:
        raise EscrowDamaged("the key escrow is damaged: a sealed key has the wrong length")
    try:
        return AESGCM(wrapping).decrypt(wrapped[:12], wrapped[12:], aad)
    except InvalidTag:
        raise EscrowDamaged(
            "the key escrow was altered or is damaged: its sealed key does not authenticate"
        ) from None


def _open_with_passphrase(env: Envelope, passphrase: bytes) -> bytes:
    s = env.passphrase
    if s is None:
        names = ", ".join(r.recipient_text for r in env.recipients)
        raise EscrowLocked(
            f"this escrow has no passphrase: open it with the private key of a recipient ({names})"
        )
    if not (MIN_SCRYPT_N <= s.n <= MAX_SCRYPT_N and 1 <= s.r <= 32 and 1 <= s.p <= 16):
        raise EscrowDamaged("the key escrow's scrypt parameters are out of range")
    try:
        wrapping, check = _derive(passphrase, s.salt, s.n, s.r, s.p)
    except ValueError:
        raise EscrowDamaged("the key escrow's scrypt parameters are invalid") from None
    if not hmac.compare_digest(check, s.check):
        raise EscrowLocked(
            "the passphrase does not open this escrow (wrong passphrase, or the escrow's "
            "salt or scrypt parameters were altered)"
        )
    return _unseal(wrapping, s.wrapped, env._aad("passphrase"))


def _open_with_private_key(env: Envelope, private: X25519PrivateKey) -> bytes:
    public = public_raw(private.public_key())
    slot = next((r for r in env.recipients if hmac.compare_digest(r.recipient, public)), None)
    if slot is None:
        how = "a passphrase" if env.passphrase is not None else "another private key"
        raise EscrowLocked(
            f"the private key of {b64(public)} is not one of this escrow's "
            f"{len(env.recipients)} recipient(s): open it with {how}"
        )
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(slot.ephemeral))
    except ValueError:
        raise EscrowDamaged("the key escrow's ephemeral key is invalid") from None
    aad = env._aad("x25519\n" + b64(public))
    return _unseal(_wrap_key(shared, slot.ephemeral, public), slot.wrapped, aad)


def open_envelope(
    env: Envelope,
    *,
    passphrase: bytes | None = None,
    private_key: X25519PrivateKey | None = None,
) -> bytes:
    """The key ``env`` holds, opened with ``private_key`` or ``passphrase`` (whichever opens
    it); :class:`EscrowLocked` if neither does, :class:`EscrowDamaged` if the envelope was
    altered (its seal, its header or its fingerprint)."""
    if passphrase is None and private_key is None:
        raise ConfigError("opening an escrow needs passphrase=... or private_key=...")
    locked: EscrowLocked | None = None
    key = None
    if private_key is not None:
        try:
            key = _open_with_private_key(env, private_key)
        except EscrowLocked as exc:
            locked = exc
    if key is None and passphrase is not None:
        try:
            key = _open_with_passphrase(env, passphrase)
        except EscrowLocked as exc:
            locked = locked or exc
    if key is None:
        assert locked is not None
        raise locked
    if not hmac.compare_digest(fingerprint(key), env.fingerprint):
        raise EscrowDamaged("the key escrow's fingerprint does not match the key it holds")
    return key


# -- names -------------------------------------------------------------------------------------


def escrow_name(fp: str, now: datetime) -> str:
    """``gocdnext-key-<fingerprint>-<UTC time>.json``."""
    return f"gocdnext-key-{fp}-{now.astimezone(UTC).strftime(_NAME_TIME)}.json"


def parse_escrow_name(name: str) -> tuple[str, datetime] | None:
    """(fingerprint, UTC time) of an escrow's name; None for any other name."""
    m = _NAME.match(name.rpartition("/")[2])
    if m is None:
        return None
    try:
        when = datetime.strptime(m.group(2), _NAME_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None
    return m.group(1), when
