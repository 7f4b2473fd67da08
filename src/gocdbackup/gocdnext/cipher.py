"""gocdnext's cipher: AES-256-GCM with ``GOCDNEXT_SECRET_KEY`` used raw (64 hex characters,
32 bytes), blobs framed ``nonce(12) || ciphertext || tag(16)``, no associated data."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gocdbackup.errors import ConfigError

KEY_ENV = "GOCDNEXT_SECRET_KEY"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def parse_key(text: str) -> bytes:
    """The 32-byte key from its 64-hex-character form (gocdnext does not trim; neither do we,
    beyond one trailing newline a file may end with). Never echoes the value."""
    value = text[:-1] if text.endswith("\n") else text
    if not _HEX64.match(value):
        raise ConfigError(f"{KEY_ENV} must be 64 hexadecimal characters (32 bytes)")
    return bytes.fromhex(value)


def encrypt(key: bytes, plaintext: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, None)


def decrypt(key: bytes, blob: bytes) -> bytes:
    if len(blob) < 28:
        raise ConfigError("an encrypted value is too short to be one of gocdnext's")
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], None)
    except InvalidTag:
        raise ConfigError(
            f"{KEY_ENV} does not decrypt this installation's values (wrong key?)"
        ) from None


def decryptor(key: bytes) -> Callable[[bytes], bytes]:
    return lambda blob: decrypt(key, blob)
