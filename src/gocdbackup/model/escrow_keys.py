"""Recipient keys of the application key's escrow: X25519 key pairs, their text encodings
(public keys as base64 or hex of the 32 raw bytes; private keys marked so that they are never
mistaken for public ones), generated and read back.  Pure: no I/O, no clock."""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from gocdbackup.errors import ConfigError

#: what the private key's text starts with, so it is never mistaken for a public key
PRIVATE_PREFIX = "gocdbackup-x25519-private:"
_HEX32 = re.compile(r"^[0-9a-fA-F]{64}$")


def _raw32(text: str, what: str) -> bytes:
    """32 raw bytes from 64 hex characters or base64 (standard or URL-safe, padding optional);
    the message names ``what``, never the value."""
    value = "".join(text.split())
    if _HEX32.match(value):
        return bytes.fromhex(value)
    try:
        raw = base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{what} must be 32 bytes, as base64 or 64 hexadecimal characters")
    return raw


def b64(raw: bytes) -> str:
    """Standard base64, as text."""
    return base64.b64encode(raw).decode("ascii")


def public_raw(key: X25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def parse_public_key(text: str) -> X25519PublicKey:
    """A recipient's X25519 public key from base64 or hex of its 32 raw bytes."""
    if text.strip().lower().startswith(PRIVATE_PREFIX):
        raise ConfigError(
            "a recipient is given by its public key; this is a private key: keep it secret "
            "and pass the public key that generate_recipient() printed with it"
        )
    return X25519PublicKey.from_public_bytes(_raw32(text, "a recipient's public key"))


def parse_private_key(text: str) -> X25519PrivateKey:
    """A recipient's X25519 private key from the text :func:`generate_recipient` gave (or base64
    or hex of its 32 raw bytes)."""
    value = text.strip()
    if value.lower().startswith(PRIVATE_PREFIX):
        value = value[len(PRIVATE_PREFIX) :]
    return X25519PrivateKey.from_private_bytes(_raw32(value, "a recipient's private key"))


def public_key_text(key: X25519PublicKey | X25519PrivateKey) -> str:
    """The public key (of a private key: its own), as base64 of its raw bytes."""
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return b64(public_raw(public))


def generate_recipient() -> tuple[str, str]:
    """A new recipient: ``(private, public)``, the private key as
    ``gocdbackup-x25519-private:<base64>`` (keep it secret; :func:`parse_private_key` reads
    it back), the public key as base64 (give it to ``recipients=``)."""
    private = X25519PrivateKey.generate()
    raw = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return PRIVATE_PREFIX + b64(raw), public_key_text(private)
