"""gocdnext's sealed values as gocdbackup reads them, and what a decrypt check found: counts
per column of values that open, fail or hold nothing, the ids of the rows that fail (never a
value), and whether it looks like the wrong key or like damaged rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import field, frozen

from gocdbackup.errors import ConfigError
from gocdbackup.gocdnext.secrets import ENCRYPTED_COLUMNS, EncryptedColumn, Form
from gocdbackup.model.render import html_table, kv_table, to_pandas

#: how many failing row ids a check keeps per column
MAX_FAILING_IDS = 100
_BY_NAME = {c.name: c for c in ENCRYPTED_COLUMNS}


@frozen(kw_only=True)
class SealedValue:
    """One value of an encrypted column: where it is, and its blob (None: no value — a NULL,
    or a secret kept in an external store).  The blob is never shown."""

    column: str  # "table.column", an EncryptedColumn's name
    row_key: str  # the row's primary key, as text
    entry: str = ""  # for a map of sealed values (runner profiles): the entry's name
    blob: bytes | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        """``table.column id`` (and ``[entry]``): what a report names, never the value."""
        return f"{self.column} {self.row_key}" + (f" [{self.entry}]" if self.entry else "")


@frozen(kw_only=True)
class Reseal:
    """Replace ``value``'s blob by ``blob`` (only if it still holds ``value.blob``)."""

    value: SealedValue
    blob: bytes = field(repr=False)


def column_of(change: Reseal) -> EncryptedColumn:
    """The encrypted column ``change`` rewrites, checked before anything is written: one of
    gocdnext's, holding a value, with an entry exactly when the column is a map."""
    value = change.value
    column = _BY_NAME.get(value.column)
    if column is None:
        raise ConfigError(f"{value.column!r} is not one of gocdnext's encrypted columns")
    if value.blob is None or (column.form is Form.HEX_MAP) != bool(value.entry):
        raise ConfigError(f"{value.where} holds no sealed value to replace")
    return column


@frozen(kw_only=True)
class ColumnCheck:
    column: str
    ok: int = 0
    failed: int = 0
    empty: int = 0
    #: rows whose value does not open (their ``where``), at most MAX_FAILING_IDS
    failing: tuple[str, ...] = ()
    present: bool = True  # False: this database has no such column (an older gocdnext)

    @property
    def total(self) -> int:
        return self.ok + self.failed + self.empty


@frozen(kw_only=True)
class SecretsCheck:
    """The outcome of a decrypt check of every encrypted column under one key."""

    fingerprint: str
    columns: tuple[ColumnCheck, ...]

    @property
    def ok(self) -> int:
        return sum(c.ok for c in self.columns)

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.columns)

    @property
    def empty(self) -> int:
        return sum(c.empty for c in self.columns)

    @property
    def wrong_key(self) -> bool:
        """Nothing opens and something fails: the key is not the one the values were sealed
        with (damaged rows leave the others opening)."""
        return self.failed > 0 and self.ok == 0

    @property
    def passed(self) -> bool:
        return self.failed == 0

    def verdict(self) -> str:
        if self.passed:
            return f"all {self.ok:,} sealed value(s) open with key {self.fingerprint}"
        if self.wrong_key:
            return (
                f"WRONG KEY: none of the {self.failed:,} sealed value(s) opens with key "
                f"{self.fingerprint}"
            )
        return (
            f"{self.failed:,} damaged value(s): they do not open with key {self.fingerprint}, "
            f"while {self.ok:,} others do"
        )

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "column": c.column,
                "ok": c.ok,
                "failed": c.failed,
                "empty": c.empty,
                "present": c.present,
                "failing": ", ".join(c.failing),
            }
            for c in self.columns
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "ok": self.ok,
            "failed": self.failed,
            "empty": self.empty,
            "wrong_key": self.wrong_key,
            "passed": self.passed,
            "columns": {
                c.column: {
                    "ok": c.ok,
                    "failed": c.failed,
                    "empty": c.empty,
                    "present": c.present,
                    "failing": list(c.failing),
                }
                for c in self.columns
            },
        }

    def to_pandas(self) -> Any:
        return to_pandas(self.rows())

    def __repr__(self) -> str:
        return f"<SecretsCheck {self.verdict()}>"

    def _repr_html_(self) -> str:
        head = kv_table(
            [("key", self.fingerprint), ("verdict", self.verdict())], caption="Secrets check"
        )
        return head + html_table(self.rows(), caption="by column")


def tally(
    columns: Iterable[str],
    outcomes: Iterable[tuple[SealedValue, bool | None]],
    *,
    fingerprint: str,
    absent: Iterable[str] = (),
) -> SecretsCheck:
    """Count ``(value, opened)`` outcomes per column (``opened`` None: no value)."""
    counts: dict[str, dict[str, Any]] = {
        c: {"ok": 0, "failed": 0, "empty": 0, "failing": []} for c in columns
    }
    for value, opened in outcomes:
        c = counts.setdefault(value.column, {"ok": 0, "failed": 0, "empty": 0, "failing": []})
        if opened is None:
            c["empty"] += 1
        elif opened:
            c["ok"] += 1
        else:
            c["failed"] += 1
            if len(c["failing"]) < MAX_FAILING_IDS:
                c["failing"].append(value.where)
    missing = set(absent)
    return SecretsCheck(
        fingerprint=fingerprint,
        columns=tuple(
            ColumnCheck(
                column=name,
                ok=c["ok"],
                failed=c["failed"],
                empty=c["empty"],
                failing=tuple(c["failing"]),
                present=name not in missing,
            )
            for name, c in counts.items()
        ),
    )


def by_column(check: SecretsCheck) -> Mapping[str, ColumnCheck]:
    return {c.column: c for c in check.columns}
