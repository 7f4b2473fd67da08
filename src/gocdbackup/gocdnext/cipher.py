"""gocdnext's cipher: AES-256-GCM with ``GOCDNEXT_SECRET_KEY`` used raw (64 hex characters,
32 bytes), blobs framed ``nonce(12) || ciphertext || tag(16)``, no associated data."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gocdbackup.errors import ConfigError

KEY_ENV = "GOCDNEXT_SECRET_KEY"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def parse_key(text: str, *, source: str = KEY_ENV, from_file: bool = False) -> bytes:
    """The 32-byte key from its form gocdnext reads: 64 hexadecimal characters, either case,
    nothing else.  gocdnext does not trim its environment variable, so neither is anything
    trimmed here, except that a file may end with one newline (``from_file``), as files do.
    Messages say what is wrong and never echo the value."""
    value = text
    if from_file and value.endswith("\n"):
        value = value[:-2] if value.endswith("\r\n") else value[:-1]
    if value != value.rstrip("\r\n"):
        raise ConfigError(
            f"{source} ends with a newline: gocdnext would refuse it (it does not trim the "
            "value); remove the newline"
        )
    if len(value) != 64:
        raise ConfigError(
            f"{source} must be 64 hexadecimal characters (32 bytes); it has {len(value)}"
        )
    if not _HEX64.match(value):
        raise ConfigError(
            f"{source} must be 64 hexadecimal characters (32 bytes); it holds other characters"
        )
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


#: nonce(12) and tag(16): the shortest blob gocdnext writes (an empty plaintext)
OVERHEAD = 28


def opener(key: bytes) -> Callable[[bytes], bytes | None]:
    """A function that opens a blob sealed with ``key``: its plaintext, or None if it does not
    open (another key, damage, too short).  The cipher is set up once, for speed."""
    aead = AESGCM(key)

    def open_blob(blob: bytes) -> bytes | None:
        if len(blob) < OVERHEAD:
            return None
        try:
            return aead.decrypt(blob[:12], blob[12:], None)
        except InvalidTag:
            return None

    return open_blob


def trial(key: bytes) -> Callable[[Sequence[bytes | None]], tuple[int, int, list[int]]]:
    """A function that tries ``key`` on many blobs at once: how many open, how many hold
    nothing (None or empty), and the indexes of those that do not open.  The hot loop of a
    decrypt check, kept as lean as a bare loop of the same calls."""
    decrypt = AESGCM(key).decrypt

    def try_all(blobs: Sequence[bytes | None]) -> tuple[int, int, list[int]]:
        opened = empty = 0
        failing: list[int] = []
        for i, blob in enumerate(blobs):
            if not blob:
                empty += 1
                continue
            try:
                decrypt(blob[:12], blob[12:], None)
                opened += 1
            except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce and tag
                failing.append(i)
        return opened, empty, failing

    return try_all


def sealer(key: bytes) -> Callable[[bytes], bytes]:
    """A function that seals a plaintext with ``key`` as gocdnext does (fresh random nonce)."""
    aead = AESGCM(key)

    def seal(plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + aead.encrypt(nonce, plaintext, None)

    return seal
