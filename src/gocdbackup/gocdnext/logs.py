"""gocdnext's job logs: the lines of ``log_lines`` while a job runs, and the archive object
``logs/<job_run_id>.log.gz`` after it (gzip of ``<seq>\\t<at RFC3339Nano UTC>\\t<stream>\\t<text>``
lines, the text escaped: ``\\\\`` for a backslash, ``\\t`` for a TAB, ``\\n`` for a newline)."""

from __future__ import annotations

import re

from attrs import frozen

from gocdbackup.errors import IntegrityError

_ESCAPE = re.compile(r"\\(.)")
_UNESCAPED = {"\\": "\\", "t": "\t", "n": "\n"}
_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


@frozen(kw_only=True)
class LogLine:
    seq: int
    at: str
    stream: str
    text: str


def _unescape(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1) not in _UNESCAPED:
            raise ValueError(f"unknown escape \\{m.group(1)}")
        return _UNESCAPED[m.group(1)]

    return _ESCAPE.sub(one, text)


def parse_archive(text: str) -> list[LogLine]:
    """Every line of an archived log (already decompressed), in order; an
    :class:`~gocdbackup.errors.IntegrityError` naming the first line that does not parse."""
    out: list[LogLine] = []
    # lines end with "\n" only: a CR or another Unicode line break is part of the text
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    for n, line in enumerate(rows, start=1):
        parts = line.split("\t")
        try:
            if len(parts) != 4 or not _AT.fullmatch(parts[1]):
                raise ValueError("not <seq> TAB <time> TAB <stream> TAB <text>")
            out.append(
                LogLine(seq=int(parts[0]), at=parts[1], stream=parts[2], text=_unescape(parts[3]))
            )
        except ValueError as exc:
            raise IntegrityError(f"line {n} of the archived log does not parse: {exc}") from None
    return out
