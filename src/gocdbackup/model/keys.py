"""Object keys: the one rule every store applies before touching a key."""

from __future__ import annotations

from gocdbackup.errors import ConfigError


def check_object_key(key: str) -> str:
    """``key`` if it is a safe relative key; :class:`ConfigError` for an empty key, an absolute
    path or any ``..`` segment (which could escape the store's root)."""
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise ConfigError(f"unsafe object key {key!r}")
    return key
