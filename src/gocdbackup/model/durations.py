"""Durations as people type them: ``0s``, ``90s``, ``30m``, ``6h``, ``2d``, ``1w``, ``1d12h``."""

from __future__ import annotations

import re
from datetime import timedelta

from gocdbackup.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """``"1d12h"`` -> ``timedelta(days=1, hours=12)``; :class:`ConfigError` otherwise."""
    value = text.strip().lower()
    if not value or _PART.sub("", value):
        raise ConfigError(f"{text!r} is not a duration (examples: 0s, 30m, 6h, 2d, 1w, 1d12h)")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in _PART.findall(value)))


def format_duration(delta: timedelta) -> str:
    """The shortest exact form: ``timedelta(hours=36)`` -> ``"1d12h"``; ``"0s"`` for zero."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)
