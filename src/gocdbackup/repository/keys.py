"""Key slots: the repository's master keys, wrapped by key-encryption keys (KEKs).

The master keys are 64 random bytes: 32 for AES-256-GCM of blobs and manifests, 32 for the
HMAC-SHA256 that names blobs.  Each slot wraps them with a KEK derived from a passphrase by
scrypt.  Adding or changing a slot rewraps the master keys; data is never re-encrypted.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime
from typing import Any

from attrs import field, frozen
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from gocdbackup.errors import ConfigError

#: scrypt cost: about 0.1 s and 32 MiB on one core, per open of the repository
DEFAULT_SCRYPT_N = 2**15
_SLOT_AAD = b"gocdbackup.keyslot.v1"


@frozen(kw_only=True)
class MasterKeys:
    encryption_key: bytes = field(repr=False)
    id_key: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> MasterKeys:
        return cls(encryption_key=os.urandom(32), id_key=os.urandom(32))

    def to_bytes(self) -> bytes:
        return self.encryption_key + self.id_key

    @classmethod
    def from_bytes(cls, raw: bytes) -> MasterKeys:
        if len(raw) != 64:
            raise ConfigError("corrupt key slot: unexpected key length")
        return cls(encryption_key=raw[:32], id_key=raw[32:])

    def __repr__(self) -> str:
        return "MasterKeys(<redacted>)"


@frozen(kw_only=True)
class KeySlot:
    id: str
    label: str
    created_at: datetime
    salt: bytes = field(repr=False)
    n: int
    r: int
    p: int
    wrapped: bytes = field(repr=False)  # nonce(12) || AES-GCM(master keys)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": "scrypt",
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "salt": base64.b64encode(self.salt).decode(),
            "n": self.n,
            "r": self.r,
            "p": self.p,
            "wrapped": base64.b64encode(self.wrapped).decode(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KeySlot:
        if d.get("kind") != "scrypt":
            raise ConfigError(f"unsupported key slot kind {d.get('kind')!r}")
        return cls(
            id=str(d["id"]),
            label=str(d.get("label", "")),
            created_at=datetime.fromisoformat(d["created_at"]),
            salt=base64.b64decode(d["salt"]),
            n=int(d["n"]),
            r=int(d["r"]),
            p=int(d["p"]),
            wrapped=base64.b64decode(d["wrapped"]),
        )


def _kek(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def wrap_keys(
    keys: MasterKeys,
    passphrase: bytes,
    *,
    label: str,
    created_at: datetime,
    n: int = DEFAULT_SCRYPT_N,
    r: int = 8,
    p: int = 1,
) -> KeySlot:
    if not passphrase:
        raise ConfigError("the repository passphrase must not be empty")
    salt = os.urandom(16)
    nonce = os.urandom(12)
    sealed = AESGCM(_kek(passphrase, salt, n, r, p)).encrypt(nonce, keys.to_bytes(), _SLOT_AAD)
    return KeySlot(
        id=os.urandom(4).hex(),
        label=label,
        created_at=created_at,
        salt=salt,
        n=n,
        r=r,
        p=p,
        wrapped=nonce + sealed,
    )


def unwrap_keys(slot: KeySlot, passphrase: bytes) -> MasterKeys | None:
    """The master keys if ``passphrase`` opens ``slot``, else None."""
    kek = _kek(passphrase, slot.salt, slot.n, slot.r, slot.p)
    try:
        raw = AESGCM(kek).decrypt(slot.wrapped[:12], slot.wrapped[12:], _SLOT_AAD)
    except InvalidTag:
        return None
    return MasterKeys.from_bytes(raw)
