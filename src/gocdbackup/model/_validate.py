"""Small attrs validators shared by the model."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import attrs

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def aware(_inst: Any, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    """Datetimes in the model are timezone-aware (UTC by convention)."""
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{attribute.name} must be timezone-aware, got {value!r}")


def non_negative(_inst: Any, attribute: attrs.Attribute[Any], value: int | float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def hex64(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not _HEX64.match(value):
        raise ValueError(f"{attribute.name} must be 64 lowercase hex characters")
