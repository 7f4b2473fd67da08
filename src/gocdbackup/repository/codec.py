"""Blob encoding: zstd, then AES-256-GCM; blobs are named by HMAC-SHA256 of their plaintext.

Stored blob layout: ``b"G1"`` || nonce(12) || AES-GCM(zstd(plaintext)) with the blob id as
associated data, so a blob copied under another name fails to decrypt.  After decryption the
HMAC of the plaintext is computed again and must equal the id.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gocdbackup.errors import IntegrityError
from gocdbackup.repository.keys import MasterKeys

_MAGIC = b"G1"
_MANIFEST_AAD = b"gocdbackup.manifest:"


class BlobCodec:
    """Thread-safe: compressors are created per call (they are cheap at level 3)."""

    def __init__(self, keys: MasterKeys, *, level: int = 3) -> None:
        self._aead = AESGCM(keys.encryption_key)
        self._id_key = keys.id_key
        self._level = level

    def __repr__(self) -> str:
        return "BlobCodec(<keys redacted>)"

    def blob_id(self, plaintext: bytes | memoryview) -> str:
        return hmac.new(self._id_key, plaintext, hashlib.sha256).hexdigest()

    def seal(self, blob_id: str, plaintext: bytes | memoryview) -> bytes:
        packed = zstandard.ZstdCompressor(level=self._level).compress(plaintext)
        nonce = os.urandom(12)
        return _MAGIC + nonce + self._aead.encrypt(nonce, packed, blob_id.encode())

    def open(self, blob_id: str, stored: bytes) -> bytes:
        if stored[:2] != _MAGIC or len(stored) < 2 + 12 + 16:
            raise IntegrityError(f"blob {blob_id[:12]}… is not a gocdbackup blob")
        try:
            packed = self._aead.decrypt(stored[2:14], stored[14:], blob_id.encode())
        except InvalidTag as exc:
            raise IntegrityError(
                f"blob {blob_id[:12]}… fails authentication (corrupt or tampered)"
            ) from exc
        try:
            plaintext = zstandard.ZstdDecompressor().decompress(packed)
        except zstandard.ZstdError as exc:  # pragma: no cover - authenticated data decompresses
            raise IntegrityError(f"blob {blob_id[:12]}… does not decompress") from exc
        if not hmac.compare_digest(self.blob_id(plaintext), blob_id):
            raise IntegrityError(f"blob {blob_id[:12]}… content does not match its id")
        return plaintext

    def seal_manifest(self, backup_id: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, _MANIFEST_AAD + backup_id.encode())

    def open_manifest(self, backup_id: str, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], _MANIFEST_AAD + backup_id.encode())
        except InvalidTag as exc:
            raise IntegrityError(f"manifest of {backup_id} fails authentication") from exc
