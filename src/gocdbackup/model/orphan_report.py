"""The orphan report: a value that says, for one database and one store at one time, which keys
are rows without objects, objects without rows, or both but wrong.  Rows are kept in key order
in a :class:`RowBuffer` (in memory here; the scan's driver-side buffer spills to a temporary
file, so a report of millions of findings stays small in memory).  Its serialised form is JSON
Lines (a header, then one row per line): :meth:`OrphanReport.to_json_lines` and
:func:`parse_report` are pure; files are written and read by ``gocdbackup.save_report`` /
``load_report``."""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from attrs import field, frozen

from gocdbackup.errors import ReportMismatch, UnsupportedFormat
from gocdbackup.model.durations import format_duration
from gocdbackup.model.orphans import OrphanClass, OrphanRow
from gocdbackup.model.render import html_table, human_bytes, kv_table, to_pandas

REPORT_KIND = "gocdbackup.orphan_report"
CSV_FIELDS = (
    "key",
    "class",
    "size_bytes",
    "table",
    "row_id",
    "status",
    "modified_at",
    "stamped_at",
    "sha256",
)


@frozen(kw_only=True)
class ScanSource:
    """What was scanned: the database (``GocdnextData.source_id()``) and the store URL."""

    database: str
    store: str


def row_to_dict(row: OrphanRow) -> dict[str, Any]:
    out: dict[str, Any] = {"key": row.key, "class": row.cls.value, "size_bytes": row.size_bytes}
    if row.table:
        out.update(table=row.table, row_id=row.row_id, status=row.status)
    if row.modified_at is not None:
        out["modified_at"] = row.modified_at.isoformat()
    if row.stamped_at is not None:
        out["stamped_at"] = row.stamped_at.isoformat()
    if row.sha256:
        out["sha256"] = row.sha256
    if not row.has_object:
        out["object"] = False
    return out


def row_from_dict(d: Mapping[str, Any]) -> OrphanRow:
    def when(name: str) -> datetime | None:
        value = d.get(name)
        return datetime.fromisoformat(value) if value else None

    return OrphanRow(
        key=str(d["key"]),
        cls=OrphanClass(d["class"]),
        size_bytes=int(d.get("size_bytes", 0)),
        table=str(d.get("table", "")),
        row_id=str(d.get("row_id", "")),
        status=str(d.get("status", "")),
        modified_at=when("modified_at"),
        stamped_at=when("stamped_at"),
        sha256=str(d.get("sha256", "")),
        # reports written before the flag: a row-side key with no object write time
        has_object=bool(d.get("object", not (d.get("table") and not d.get("modified_at")))),
    )


def describe_report(report: OrphanReport) -> str:
    """One sentence for people: what the store held and what the scan found."""
    if not report.complete:
        head = f"INCOMPLETE scan (stopped at {report.cursor!r})"
    elif report.store_empty:
        head = "the store is EMPTY (no object at all)"
    elif report.store_objects is None:
        head = "scanned"
    else:
        head = f"{report.store_objects:,} object(s) in the store"
    findings = [
        f"{c.value} {n:,} ({human_bytes(report.bytes.get(c.value, 0))})"
        for c in OrphanClass
        if c is not OrphanClass.OK and (n := report.counts.get(c.value, 0))
    ]
    ok = report.counts.get(OrphanClass.OK.value, 0)
    if report.listed_at is not None:
        head += (
            f" (listed from the inventory taken {report.listed_at:%Y-%m-%d %H:%M} UTC; objects"
            " written later without a row are not in it)"
        )
    return f"{head}; ok {ok:,}; " + ("; ".join(findings) if findings else "nothing else found")


class RowBuffer(Protocol):
    """Where a report keeps its rows: appended in key order, read back in that order (also
    while being appended to), each as one canonical JSON line."""

    count: int

    def append(self, row: OrphanRow) -> None: ...

    def extend(self, rows: Iterable[OrphanRow]) -> None: ...

    @property
    def digest(self) -> str: ...

    def lines(self) -> Iterator[bytes]: ...

    def __iter__(self) -> Iterator[OrphanRow]: ...


def row_line(row: OrphanRow) -> bytes:
    """The canonical JSON line of a row (sorted keys, no spaces)."""
    return json.dumps(row_to_dict(row), sort_keys=True, separators=(",", ":")).encode()


class LineRows:
    """What every :class:`RowBuffer` shares: rows become canonical lines, counted and hashed;
    a subclass keeps the lines (:meth:`_keep`) and gives them back in order (:meth:`lines`)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.count = 0

    def _keep(self, line: bytes) -> None:
        raise NotImplementedError

    def lines(self) -> Iterator[bytes]:
        raise NotImplementedError

    def append(self, row: OrphanRow) -> None:
        line = row_line(row)
        self._keep(line)
        self._digest.update(line)
        self.count += 1

    def extend(self, rows: Iterable[OrphanRow]) -> None:
        for row in rows:
            self.append(row)

    @property
    def digest(self) -> str:
        return self._digest.hexdigest()

    def __iter__(self) -> Iterator[OrphanRow]:
        for line in self.lines():
            yield row_from_dict(json.loads(line))


class MemoryRows(LineRows):
    """A :class:`RowBuffer` in memory (small reports, tests, fakes)."""

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[bytes] = []

    def _keep(self, line: bytes) -> None:
        self._lines.append(line)

    def lines(self) -> Iterator[bytes]:
        n = 0
        while n < len(self._lines):  # a consumer may append meanwhile
            yield self._lines[n]
            n += 1


@frozen(kw_only=True, eq=False)
class OrphanReport:
    """The outcome of :func:`~gocdbackup.ops.orphans.scan_orphans`: counts and bytes per
    class, and every key that is not ``ok``, in key order (:meth:`rows`)."""

    id: str
    scanned_at: datetime
    grace: timedelta
    source: ScanSource
    counts: Mapping[str, int]
    bytes: Mapping[str, int]
    #: False when the scan was interrupted: ``cursor`` is the last key classified
    complete: bool = True
    cursor: str = ""
    verify_percent: float = 0.0
    #: objects the store listing held (None: a report written before this was counted)
    store_objects: int | None = None
    spool: RowBuffer = field(factory=MemoryRows, repr=False)
    #: where the store's objects were listed from: "" for the store itself, else the URL of
    #: the inventory read instead, taken at ``listed_at`` (objects written later unseen)
    listing: str = ""
    listed_at: datetime | None = None

    # -- reading ------------------------------------------------------------------------------

    def rows(self, *classes: OrphanClass | str) -> Iterator[OrphanRow]:
        """The classified keys (every class but ``ok``), in key order; only ``classes`` if
        given."""
        wanted = {OrphanClass(c) for c in classes}
        for row in self.spool:
            if not wanted or row.cls in wanted:
                yield row

    def __iter__(self) -> Iterator[OrphanRow]:
        return self.rows()

    @property
    def store_empty(self) -> bool:
        """The store held no object at all when it was scanned (the lost-bucket case, or a
        URL that points at the wrong place)."""
        return self.complete and self.store_objects == 0

    def summary(self) -> dict[str, Any]:
        """The JSON-friendly description ``orphans scan --json`` prints."""
        return {
            "id": self.id,
            "scanned_at": self.scanned_at.isoformat(),
            "grace": format_duration(self.grace),
            "database": self.source.database,
            "store": self.source.store,
            "complete": self.complete,
            "cursor": self.cursor,
            "verify_percent": self.verify_percent,
            "store_objects": self.store_objects,
            "store_empty": self.store_empty,
            "listing": self.listing or None,
            "listed_at": self.listed_at.isoformat() if self.listed_at else None,
            "counts": dict(self.counts),
            "bytes": dict(self.bytes),
        }

    def table(self) -> list[dict[str, Any]]:
        """One row per class: count and bytes (what :meth:`_repr_html_` shows)."""
        return [
            {
                "class": c.value,
                "side": c.side,
                "count": self.counts.get(c.value, 0),
                "bytes": human_bytes(self.bytes.get(c.value, 0)),
            }
            for c in OrphanClass
        ]

    def to_pandas(self) -> Any:
        return to_pandas([row_to_dict(r) for r in self.rows()])

    def _repr_html_(self) -> str:
        head = {k: v for k, v in self.summary().items() if k not in ("counts", "bytes")}
        return kv_table(head.items(), caption=f"Orphan report {self.id}") + html_table(
            self.table(), caption="by class"
        )

    def __repr__(self) -> str:
        findings = ", ".join(
            f"{k} {v:,}" for k, v in self.counts.items() if v and k != OrphanClass.OK.value
        )
        state = "" if self.complete else " INCOMPLETE"
        empty = " EMPTY STORE" if self.store_empty else ""
        return (
            f"<OrphanReport {self.id}{state}{empty} {self.source.store}: ok "
            f"{self.counts.get('ok', 0):,}; {findings or 'no findings'}>"
        )

    # -- writing ------------------------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        return {
            "kind": REPORT_KIND,
            "format_version": 1,
            **self.summary(),
            "grace_seconds": self.grace.total_seconds(),
            "rows": self.spool.count,
        }

    def to_json_lines(self) -> Iterator[builtins.bytes]:
        yield json.dumps(self.header(), sort_keys=True).encode()
        yield from self.spool.lines()

    def csv_rows(self) -> Iterator[dict[str, Any]]:
        """The rows as CSV records (the columns of :data:`CSV_FIELDS`)."""
        for row in self.rows():
            yield row_to_dict(row)

    # -- comparing ----------------------------------------------------------------------------

    def count_changes(self, older: OrphanReport) -> dict[str, int]:
        """Per class, how many keys more (or fewer) than in ``older``; only classes that
        changed.  :class:`ReportMismatch` if ``older`` describes another database or store."""
        _same_source(older, self)
        return {
            c: self.counts.get(c, 0) - older.counts.get(c, 0)
            for c in self.counts
            if self.counts.get(c, 0) != older.counts.get(c, 0)
        }

    def diff(self, older: OrphanReport) -> Iterator[tuple[str, str | None, str | None]]:
        """What changed since ``older``: (key, class then, class now) for every key whose
        class differs (None: not in that report, i.e. ``ok`` or absent), in key order.
        :class:`ReportMismatch` if ``older`` describes another database or store."""
        _same_source(older, self)
        return self._diff(older)

    def _diff(self, older: OrphanReport) -> Iterator[tuple[str, str | None, str | None]]:
        old_rows, new_rows = iter(older.rows()), iter(self.rows())
        old, new = next(old_rows, None), next(new_rows, None)
        while old is not None or new is not None:
            if new is None or (old is not None and old.key < new.key):
                assert old is not None
                yield old.key, old.cls.value, None
                old = next(old_rows, None)
            elif old is None or new.key < old.key:
                yield new.key, None, new.cls.value
                new = next(new_rows, None)
            else:
                if old.cls is not new.cls:
                    yield new.key, old.cls.value, new.cls.value
                old, new = next(old_rows, None), next(new_rows, None)


def _same_source(older: OrphanReport, newer: OrphanReport) -> None:
    if older.source != newer.source:
        raise ReportMismatch(
            f"reports {older.id} and {newer.id} describe different databases or stores; "
            "nothing to compare"
        )


def parse_report(
    lines: Iterable[builtins.bytes], *, origin: str, rows: RowBuffer | None = None
) -> OrphanReport:
    """A report from its JSON Lines (``origin`` names where they came from, for messages);
    its rows go to ``rows`` (default: memory).  :class:`UnsupportedFormat` if it is not one."""
    it = iter(lines)
    spool: RowBuffer = rows if rows is not None else MemoryRows()
    try:
        head = json.loads(next(it, b"null"))
        if not isinstance(head, dict) or head.get("kind") != REPORT_KIND:
            raise UnsupportedFormat(f"{origin} is not an orphan report")
        if head.get("format_version") != 1:
            raise UnsupportedFormat(
                f"{origin}: orphan report format {head.get('format_version')} is not "
                "supported by this version"
            )
        for line in it:
            if line.strip():
                spool.append(row_from_dict(json.loads(line)))
        return OrphanReport(
            id=str(head["id"]),
            scanned_at=datetime.fromisoformat(head["scanned_at"]),
            grace=timedelta(seconds=float(head["grace_seconds"])),
            source=ScanSource(database=str(head["database"]), store=str(head["store"])),
            counts={str(k): int(v) for k, v in head["counts"].items()},
            bytes={str(k): int(v) for k, v in head["bytes"].items()},
            complete=bool(head["complete"]),
            cursor=str(head.get("cursor", "")),
            verify_percent=float(head.get("verify_percent", 0.0)),
            store_objects=(
                None if head.get("store_objects") is None else int(head["store_objects"])
            ),
            spool=spool,
            listing=str(head.get("listing") or ""),
            listed_at=(
                datetime.fromisoformat(head["listed_at"]) if head.get("listed_at") else None
            ),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise UnsupportedFormat(f"{origin} is not a readable orphan report: {exc}") from None
