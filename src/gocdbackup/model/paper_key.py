"""The paper form of gocdnext's application key: plain text that survives printing and
retyping.  Every line that matters is ``label: value  cc``, where ``cc`` is a CRC-8 of the
line's label and value, so one mistyped character is found at once and its line is named; the
key is four lines of four groups of four hex characters, followed by a whole-key check; the
key's fingerprint and the date are on the sheet too.  Reading back tolerates extra or missing
spaces, upper case, blank lines, comment lines (``#``) and a line typed twice.

Pure: no clock (``now`` is an argument), no I/O.  Messages name lines, never what they hold."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime

from attrs import field, frozen

from gocdbackup.errors import ConfigError, PaperFormError, UnsupportedFormat
from gocdbackup.gocdnext.secrets import fingerprint

PAPER_FORMAT = "1"
KEY_LINES = 4
_GROUP = 4
_LINE_HEX = 16  # hex characters of the key per line (8 bytes)
_CHECK_LABEL = b"gocdbackup paper key v1\n"
_KEY_LABELS = tuple(str(i) for i in range(1, KEY_LINES + 1))
#: every line a paper form must have, in the order it is printed
LABELS = ("format", "fingerprint", "date", *_KEY_LABELS, "check")
_LINE = re.compile(r"^([a-z0-9]+)\s*:(.*)$")
_VALUE = {
    "format": re.compile(r"^[0-9]+$"),
    "fingerprint": re.compile(r"^[0-9a-f]{16}$"),
    "date": re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
    "check": re.compile(r"^[0-9a-f]{8}$"),
    **{label: re.compile(r"^[0-9a-f]{16}$") for label in _KEY_LABELS},
}
_SHAPE = {
    "format": "a number",
    "fingerprint": "16 hexadecimal characters",
    "date": "a date YYYY-MM-DD",
    "check": "8 hexadecimal characters",
    **{label: "16 hexadecimal characters" for label in _KEY_LABELS},
}


def crc8(data: bytes) -> int:
    """CRC-8 (polynomial x^8+x^2+x+1, 0x07): finds every error within 8 consecutive bits, so
    every changed character, and every swap of two neighbouring hex characters."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def line_check(label: str, value: str) -> str:
    """The two hex characters ending the line ``label: value`` (value without spaces)."""
    return f"{crc8(f'{label}:{value}'.encode('ascii')):02x}"


def key_check(key: bytes) -> str:
    """The whole-key check: 8 hex characters of SHA-256 over a label and the key."""
    return hashlib.sha256(_CHECK_LABEL + key).hexdigest()[:8]


def _grouped(hex_text: str) -> str:
    return " ".join(hex_text[i : i + _GROUP] for i in range(0, len(hex_text), _GROUP))


def _line(label: str, value: str, shown: str | None = None) -> str:
    return f"{label + ':':<13} {shown or value:<19}  {line_check(label, value)}"


def render_paper(key: bytes, *, now: datetime) -> str:
    """The paper form of ``key``, dated ``now`` (UTC): ASCII lines under 80 characters."""
    if len(key) != 32:
        raise ConfigError("the application key must be 32 bytes")
    day = now.astimezone(UTC).date().isoformat()
    fp = fingerprint(key)
    hex_key = key.hex()
    lines = [
        f"# gocdbackup paper key: gocdnext's GOCDNEXT_SECRET_KEY, {day} (UTC)",
        "# Anyone who reads this sheet has the key: keep it as you would keep the key.",
        "#",
        "# To recover the key, type every line that does not start with '#' into a",
        "# text file (spaces, upper or lower case and blank lines do not matter), run:",
        "#     gocdbackup secrets recover --paper FILE --out KEY_FILE",
        "# The last two characters of each line check it: a mistyped line is named.",
        "",
        _line("format", PAPER_FORMAT),
        _line("fingerprint", fp, _grouped(fp)),
        _line("date", day),
        "",
    ]
    for i, label in enumerate(_KEY_LABELS):
        part = hex_key[i * _LINE_HEX : (i + 1) * _LINE_HEX]
        lines.append(_line(label, part, _grouped(part)))
    check = key_check(key)
    lines += ["", _line("check", check, _grouped(check)), ""]
    return "\n".join(lines)


@frozen(kw_only=True)
class PaperKey:
    """A key read back from its paper form."""

    key: bytes = field(repr=False)
    fingerprint: str
    written: date


def _where(label: str) -> str:
    return f"key line {label}" if label in _KEY_LABELS else f"the {label!r} line"


def _read_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """``(line number in the text, label, value)`` of each line that matters, each checked
    against its own two-character check."""
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        line = raw.strip().lower()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None or m.group(1) not in _VALUE:
            raise PaperFormError(
                f"paper key: line {number} of the text is not one of its lines "
                f"({', '.join(repr(label + ':') for label in LABELS)}): is it mistyped?",
                line=number,
            )
        label = m.group(1)
        where = f"{_where(label)} (line {number} of the text)"
        body = "".join(m.group(2).split())
        value, check = body[:-2], body[-2:]
        if not re.fullmatch(r"[0-9a-f]{2}", check) or not value:
            raise PaperFormError(
                f"paper key: {where} does not end with its two-character check",
                line=number,
                label=label,
            )
        if not _VALUE[label].match(value):
            raise PaperFormError(
                f"paper key: {where} should hold {_SHAPE[label]} before its check: a character "
                "is mistyped, missing or extra",
                line=number,
                label=label,
            )
        if not hmac.compare_digest(line_check(label, value), check):
            raise PaperFormError(
                f"paper key: {where} does not match its check: a character on it is mistyped",
                line=number,
                label=label,
            )
        yield number, label, value


def read_paper(text: str) -> PaperKey:
    """The key a paper form holds, checked line by line, as a whole and against its
    fingerprint; :class:`PaperFormError` naming the first line that does not check."""
    found: dict[str, tuple[int, str]] = {}
    for number, label, value in _read_lines(text):
        if label in found and found[label][1] != value:
            raise PaperFormError(
                f"paper key: {_where(label)} appears twice, differently (lines "
                f"{found[label][0]} and {number} of the text)",
                line=number,
                label=label,
            )
        found.setdefault(label, (number, value))
    for label in LABELS:
        if label not in found:
            raise PaperFormError(f"paper key: {_where(label)} is missing", label=label)
    if found["format"][1] != PAPER_FORMAT:
        raise UnsupportedFormat(
            f"paper key format {found['format'][1]}: this gocdbackup reads format {PAPER_FORMAT}"
        )
    try:
        written = date.fromisoformat(found["date"][1])
    except ValueError:
        raise PaperFormError(
            f"paper key: the 'date' line (line {found['date'][0]} of the text) is not a date",
            line=found["date"][0],
            label="date",
        ) from None
    key = bytes.fromhex("".join(found[label][1] for label in _KEY_LABELS))
    if not hmac.compare_digest(key_check(key), found["check"][1]):
        raise PaperFormError(
            "paper key: every line passes its own check, but the key does not match the "
            f"'check' line (line {found['check'][0]} of the text): more than one character "
            "is mistyped, or two lines were swapped",
            line=found["check"][0],
            label="check",
        )
    fp = fingerprint(key)
    if not hmac.compare_digest(fp, found["fingerprint"][1]):
        raise PaperFormError(
            "paper key: the key does not match the 'fingerprint' line (line "
            f"{found['fingerprint'][0]} of the text): more than one character is mistyped",
            line=found["fingerprint"][0],
            label="fingerprint",
        )
    return PaperKey(key=key, fingerprint=fp, written=written)
