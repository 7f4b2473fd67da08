"""Orphan reports on local disk: the scan's row buffer (memory up to a few MiB, then a
temporary file), and reports saved and loaded as JSON Lines files, or written as CSV."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from gocdbackup.errors import StorageError, UnsupportedFormat
from gocdbackup.model.orphan_report import CSV_FIELDS, LineRows, OrphanReport, parse_report

_SPOOL_BYTES = 1024 * 1024


class TempFileRows(LineRows):
    """A :class:`~gocdbackup.model.orphan_report.RowBuffer` that keeps its JSON lines in
    memory up to a few MiB, then in a temporary file (deleted when the buffer goes)."""

    def __init__(self) -> None:
        super().__init__()
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115

    def _keep(self, line: bytes) -> None:
        self._file.seek(0, io.SEEK_END)
        self._file.write(line + b"\n")

    def lines(self) -> Iterator[bytes]:
        self._file.seek(0)
        while True:
            pos = self._file.tell()
            line = self._file.readline()
            if not line:
                return
            yield line.rstrip(b"\n")
            self._file.seek(pos + len(line))  # a consumer may have appended meanwhile


def save_report(report: OrphanReport, path: str | Path) -> Path:
    """Write ``report`` as JSON Lines (a header, then one line per row); returns the path.

    A regular file is replaced atomically (a temporary file beside it, then a rename);
    anything else (``/dev/stdout``, a pipe) is written in place, never replaced."""
    target = Path(path)
    try:
        if target.exists() and not target.is_file():
            with open(target, "wb") as out:
                _write(report, out)
            return target
        tmp = target.with_name(f".{target.name}.tmp")
        with open(tmp, "wb") as out:
            _write(report, out)
        tmp.replace(target)
    except OSError as exc:
        raise StorageError(f"cannot write the report {target}: {exc.strerror or exc}") from exc
    return target


def _write(report: OrphanReport, out: IO[bytes]) -> None:
    for line in report.to_json_lines():
        out.write(line + b"\n")


def load_report(path: str | Path) -> OrphanReport:
    """A report :func:`save_report` wrote; :class:`UnsupportedFormat` if it is not one."""
    try:
        with open(path, "rb") as f:
            return parse_report(f, origin=str(path), rows=TempFileRows())
    except FileNotFoundError:
        raise UnsupportedFormat(f"{path}: no such report") from None
    except OSError as exc:
        raise StorageError(f"cannot read the report {path}: {exc.strerror or exc}") from exc


def write_report_csv(report: OrphanReport, path: str | Path) -> Path:
    """The report's rows as CSV (one line per classified key)."""
    target = Path(path)
    try:
        with open(target, "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(report.csv_rows())
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target
