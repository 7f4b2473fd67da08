"""Pure helpers that turn model values into rows and small HTML tables (for Jupyter)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gocdbackup.errors import ConfigError

#: the extra that installs what :func:`to_pandas` needs
NOTEBOOK_EXTRA = "gocdbackup[notebook]"


def human_bytes(n: int | float) -> str:
    """``1536`` -> ``'1.5 KiB'``; exact below 1 KiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def html_table(rows: Sequence[Mapping[str, Any]], *, caption: str = "") -> str:
    """A plain, escaped HTML table of ``rows`` (the keys of the first row are the columns)."""
    if not rows:
        return f"<p>{html.escape(caption)} (empty)</p>" if caption else "<p>(empty)</p>"
    columns = list(rows[0].keys())
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_pandas(rows: Iterable[Mapping[str, Any]]) -> Any:
    """A ``pandas.DataFrame`` of ``rows`` (one row per mapping), for every ``.to_pandas()``.

    pandas is optional: without it this raises :class:`~gocdbackup.errors.ConfigError` naming
    the ``notebook`` extra, chained from the ``ImportError``."""
    try:
        import pandas as pd  # noqa: PLC0415 - optional; only when the user asks for a DataFrame
    except ImportError as exc:
        raise ConfigError(
            f"to_pandas() needs pandas: pip install '{NOTEBOOK_EXTRA}' (or pip install pandas)"
        ) from exc
    return pd.DataFrame(list(rows))


def kv_table(pairs: Iterable[tuple[str, Any]], *, caption: str = "") -> str:
    """A two-column HTML table of ``(name, value)`` pairs."""
    return html_table([{"field": k, "value": v} for k, v in pairs], caption=caption)


def _cell(value: Any) -> str:
    """A cell's text: nested mappings as ``name: value, …`` and sequences comma-separated,
    never a Python repr."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_cell(v) for v in value)
    return str(value)
