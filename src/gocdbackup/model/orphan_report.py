"""The orphan report: a value that says, for one database and one store at one time, which keys
are rows without objects, objects without rows, or both but wrong.  Rows are kept in key order
in a spool (memory, then a temporary file), so a report of millions of findings stays small in
memory; it is saved as JSON lines (a header, then one row per line) and loaded back."""

from __future__ import annotations

import builtins
import csv
import hashlib
import io
import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from attrs import field, frozen

from gocdbackup.errors import UnsupportedFormat
from gocdbackup.model.durations import format_duration
from gocdbackup.model.orphans import OrphanClass, OrphanRow
from gocdbackup.model.render import html_table, human_bytes, kv_table, to_pandas

REPORT_KIND = "gocdbackup.orphan_report"
_SPOOL_BYTES = 1024 * 1024
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
    """What was scanned: the database (``Database.source_id()``) and the store URL."""

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
    return f"{head}; ok {ok:,}; " + ("; ".join(findings) if findings else "nothing else found")


class RowSpool:
    """Report rows as JSON lines, in memory up to a few MiB, then in a temporary file."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115
        self._digest = hashlib.sha256()
        self.count = 0

    def append(self, row: OrphanRow) -> None:
        line = json.dumps(row_to_dict(row), sort_keys=True, separators=(",", ":")).encode()
        self._file.seek(0, io.SEEK_END)
        self._file.write(line + b"\n")
        self._digest.update(line)
        self.count += 1

    def extend(self, rows: Iterable[OrphanRow]) -> None:
        for row in rows:
            self.append(row)

    @property
    def digest(self) -> str:
        return self._digest.hexdigest()

    def lines(self) -> Iterator[bytes]:
        self._file.seek(0)
        while True:
            pos = self._file.tell()
            line = self._file.readline()
            if not line:
                return
            yield line.rstrip(b"\n")
            self._file.seek(pos + len(line))  # a consumer may have appended meanwhile

    def __iter__(self) -> Iterator[OrphanRow]:
        for line in self.lines():
            yield row_from_dict(json.loads(line))


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
    spool: RowSpool = field(factory=RowSpool, repr=False)

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

    def save(self, path: str | Path) -> Path:
        """Write the report (header line, then one JSON line per row); returns the path.

        A regular file is replaced atomically (a temporary file beside it, then a rename);
        anything else (``/dev/stdout``, a pipe) is written in place, never replaced."""
        target = Path(path)
        if target.exists() and not target.is_file():
            with open(target, "wb") as out:
                self._write_to(out)
            return target
        tmp = target.with_name(f".{target.name}.tmp")
        with open(tmp, "wb") as out:
            self._write_to(out)
        tmp.replace(target)
        return target

    def _write_to(self, out: IO[builtins.bytes]) -> None:
        out.write(json.dumps(self.header(), sort_keys=True).encode() + b"\n")
        for line in self.spool.lines():
            out.write(line + b"\n")

    def to_json_lines(self) -> Iterator[builtins.bytes]:
        yield json.dumps(self.header(), sort_keys=True).encode()
        yield from self.spool.lines()

    def write_csv(self, path: str | Path) -> Path:
        target = Path(path)
        with open(target, "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for row in self.rows():
                writer.writerow(row_to_dict(row))
        return target

    @classmethod
    def load(cls, path: str | Path) -> OrphanReport:
        """A report saved by :meth:`save`; :class:`UnsupportedFormat` if it is not one."""
        try:
            with open(path, "rb") as f:
                head = json.loads(f.readline())
                if not isinstance(head, dict) or head.get("kind") != REPORT_KIND:
                    raise UnsupportedFormat(f"{path} is not an orphan report")
                if head.get("format_version") != 1:
                    raise UnsupportedFormat(
                        f"{path}: orphan report format {head.get('format_version')} is not "
                        "supported by this version"
                    )
                spool = RowSpool()
                for line in f:
                    if line.strip():
                        spool.append(row_from_dict(json.loads(line)))
            return cls(
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
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise UnsupportedFormat(f"{path} is not a readable orphan report: {exc}") from None

    # -- comparing ----------------------------------------------------------------------------

    def diff(self, older: OrphanReport) -> Iterator[tuple[str, str | None, str | None]]:
        """What changed since ``older``: (key, class then, class now) for every key whose
        class differs (None: not in that report, i.e. ``ok`` or absent), in key order."""
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
