"""Backup ids: sortable by time, readable, unique enough to never collide in one repository."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


def make_backup_id(at: datetime, suffix: str) -> str:
    """``2026-11-25 16:01:02Z`` + ``a3f9c2`` -> ``20261125T160102Z-a3f9c2``."""
    if not re.fullmatch(r"[0-9a-f]{6}", suffix):
        raise ValueError("suffix must be 6 lowercase hex characters")
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{suffix}"


def is_backup_id(value: str) -> bool:
    return bool(_ID.match(value))
