"""gocdnext's sealed values as gocdbackup reads them, and what a decrypt check found: counts
per column of values that open, fail or hold nothing, the ids of the rows that fail (never a
value), and whether it looks like the wrong key or like damaged rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from attrs import define, field, frozen

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
        return where_of(self.column, self.row_key, self.entry)


def where_of(column: str, row_key: str, entry: str = "") -> str:
    """``table.column id`` (and ``[entry]``): how a report names a value's row."""
    return f"{column} {row_key}" + (f" [{entry}]" if entry else "")


@frozen(kw_only=True)
class SealedBatch:
    """Consecutive values of one encrypted column, held as columns (a check runs over the
    blobs alone and names a row only when its value fails).  The blobs are never shown."""

    column: str
    blobs: Sequence[bytes | None] = field(repr=False)
    #: each value's row key; empty when read without them (a check asks which rows hold the
    #: few values that fail afterwards, see ``GocdnextData.rows_holding``)
    row_keys: Sequence[str] = ()
    #: for a map column (runner profiles): each value's entry name; empty otherwise
    entries: Sequence[str] = ()

    def __len__(self) -> int:
        return len(self.blobs)

    def where(self, i: int) -> str:
        """What a report names for the ``i``-th value (a batch read with its row keys)."""
        return where_of(self.column, self.row_keys[i], self.entries[i] if self.entries else "")

    def values(self) -> Iterator[SealedValue]:
        """Each value on its own (a batch read with its row keys)."""
        entries = self.entries or ("",) * len(self.blobs)
        for key, entry, blob in zip(self.row_keys, entries, self.blobs, strict=True):
            yield SealedValue(column=self.column, row_key=key, entry=entry, blob=blob)


def values_of(batches: Iterable[SealedBatch]) -> Iterator[SealedValue]:
    """The values of ``batches``, one at a time."""
    for batch in batches:
        yield from batch.values()


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


@define
class CheckTally:
    """A decrypt check's counts as it goes, per column: ok, failed, empty, and the failing
    rows named (at most MAX_FAILING_IDS kept, sorted, whatever order they came in)."""

    counts: dict[str, list[int]] = field(factory=dict)  # column -> [ok, failed, empty]
    failing: dict[str, list[str]] = field(factory=dict)

    @classmethod
    def of(cls, columns: Iterable[str]) -> CheckTally:
        tally = cls()
        for column in columns:
            tally.add(column)
        return tally

    def add(
        self,
        column: str,
        *,
        ok: int = 0,
        failed: int | None = None,
        empty: int = 0,
        failing: Sequence[str] = (),
    ) -> None:
        """Count values of ``column``; ``failing`` names failing rows (``failed`` of them
        failed; as many as are named when not given)."""
        counts = self.counts.setdefault(column, [0, 0, 0])
        counts[0] += ok
        counts[1] += len(failing) if failed is None else failed
        counts[2] += empty
        if failing:
            kept = self.failing.setdefault(column, [])
            kept.extend(failing)
            if len(kept) > 2 * MAX_FAILING_IDS:
                kept[:] = sorted(kept)[:MAX_FAILING_IDS]

    def result(self, *, fingerprint: str, absent: Iterable[str] = ()) -> SecretsCheck:
        missing = set(absent)
        return SecretsCheck(
            fingerprint=fingerprint,
            columns=tuple(
                ColumnCheck(
                    column=name,
                    ok=ok,
                    failed=failed,
                    empty=empty,
                    failing=tuple(sorted(self.failing.get(name, ()))[:MAX_FAILING_IDS]),
                    present=name not in missing,
                )
                for name, (ok, failed, empty) in self.counts.items()
            ),
        )


def by_column(check: SecretsCheck) -> Mapping[str, ColumnCheck]:
    return {c.column: c for c in check.columns}
