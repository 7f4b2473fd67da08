"""The paper form of the application key: round trips, tolerant reading, every single-character
change found and its line named."""

from __future__ import annotations

import os
import re
import string
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gocdbackup.errors import PaperFormError, UnsupportedFormat
from gocdbackup.gocdnext.secrets import fingerprint
from gocdbackup.model.paper_key import LABELS, crc8, line_check, read_paper, render_paper

NOW = datetime(2025, 1, 31, 23, 59, tzinfo=UTC)


def _checked_lines(text: str) -> list[int]:
    """Indexes (0-based) of the lines that matter (not blank, not comments)."""
    return [
        i for i, line in enumerate(text.splitlines()) if line.strip() and not line.startswith("#")
    ]


def test_the_paper_form_round_trips_and_shows_no_contiguous_key() -> None:
    key = os.urandom(32)
    text = render_paper(key, now=NOW)
    assert key.hex() not in text
    assert all(len(line) < 80 and line.isascii() for line in text.splitlines())
    got = read_paper(text)
    assert got.key == key
    assert got.fingerprint == fingerprint(key)
    assert got.written == date(2025, 1, 31)
    assert key.hex() not in repr(got)
    # the sheet shows the fingerprint in groups, and each line's check
    fp = fingerprint(key)
    assert f"{fp[:4]} {fp[4:8]} {fp[8:12]} {fp[12:]}" in text
    assert [line.split(":")[0] for line in text.splitlines() if ":" in line and line[0] != "#"] == [
        *LABELS
    ]


def test_reading_back_tolerates_spaces_case_blank_lines_and_no_comments() -> None:
    key = os.urandom(32)
    text = render_paper(key, now=NOW)
    retyped = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        label, _, rest = line.partition(":")
        squeezed = "".join(rest.split())
        # spaces anywhere, upper case, blank lines in between, CRLF line ends
        retyped += [f"  {label.upper()} :{' '.join(squeezed).upper()}   ", "", "\t"]
    assert read_paper("\r\n".join(retyped)).key == key
    # a line typed twice the same way is harmless; the order of the lines does not matter
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert read_paper("\n".join([*reversed(lines), lines[3]])).key == key


def test_a_mistyped_character_names_its_line() -> None:
    key = bytes(range(32))
    text = render_paper(key, now=NOW)
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("3:"))
    value_at = lines[i].index(":") + 14  # a hex character of the key's third line
    wrong = "0" if lines[i][value_at] != "0" else "1"
    lines[i] = lines[i][:value_at] + wrong + lines[i][value_at + 1 :]
    with pytest.raises(PaperFormError) as exc:
        read_paper("\n".join(lines))
    assert exc.value.line == i + 1
    assert exc.value.label == "3"
    assert f"key line 3 (line {i + 1} of the text)" in str(exc.value)
    assert "mistyped" in str(exc.value)
    assert key.hex() not in str(exc.value)
    assert lines[i].split(":")[1].split()[0] not in str(exc.value)  # never what it holds


def test_missing_lines_unknown_lines_and_conflicts_are_named() -> None:
    key = os.urandom(32)
    lines = render_paper(key, now=NOW).splitlines()
    without = [line for line in lines if not line.startswith("2:")]
    with pytest.raises(PaperFormError, match="key line 2 is missing") as exc:
        read_paper("\n".join(without))
    assert exc.value.label == "2"
    with pytest.raises(PaperFormError, match="line 3 of the text is not one of its lines"):
        read_paper("\n".join(["format: 1 7f", "", "hello: there"]))
    other = render_paper(os.urandom(32), now=NOW).splitlines()
    mixed = [*lines, next(line for line in other if line.startswith("1:"))]
    with pytest.raises(PaperFormError, match="appears twice") as exc:
        read_paper("\n".join(mixed))
    assert exc.value.line == len(mixed)


def test_a_consistent_line_of_another_key_fails_the_whole_key_check() -> None:
    key, other = os.urandom(32), os.urandom(32)
    mine = render_paper(key, now=NOW).splitlines()
    theirs = render_paper(other, now=NOW).splitlines()
    swapped = [
        next(t for t in theirs if t.startswith("2:")) if line.startswith("2:") else line
        for line in mine
    ]
    with pytest.raises(PaperFormError, match="does not match the 'check' line") as exc:
        read_paper("\n".join(swapped))
    assert exc.value.label == "check"


def test_a_fingerprint_of_another_key_is_named() -> None:
    key, other = os.urandom(32), os.urandom(32)
    lines = render_paper(key, now=NOW).splitlines()
    foreign = next(t for t in render_paper(other, now=NOW).splitlines() if "fingerprint" in t)
    lines = [foreign if line.startswith("fingerprint") else line for line in lines]
    with pytest.raises(PaperFormError, match="'fingerprint' line") as exc:
        read_paper("\n".join(lines))
    assert exc.value.label == "fingerprint"


def test_a_newer_paper_format_is_refused_as_such() -> None:
    lines = render_paper(os.urandom(32), now=NOW).splitlines()
    lines = [
        f"format: 2 {line_check('format', '2')}" if "format" in line else line for line in lines
    ]
    with pytest.raises(UnsupportedFormat, match="format 2"):
        read_paper("\n".join(lines))


def test_crc8_is_the_standard_one() -> None:
    assert crc8(b"123456789") == 0xF4  # CRC-8/SMBUS check value


@settings(max_examples=200)
@given(st.binary(min_size=32, max_size=32))
def test_any_key_round_trips_through_paper(key: bytes) -> None:
    assert read_paper(render_paper(key, now=NOW)).key == key


REPLACEMENTS = string.ascii_letters + string.digits + " :-#.,;_'\t"


@settings(max_examples=500)
@given(
    key=st.binary(min_size=32, max_size=32),
    which=st.integers(min_value=0),
    position=st.integers(min_value=0),
    new=st.sampled_from(REPLACEMENTS),
)
def test_any_single_character_change_on_a_line_is_detected(
    key: bytes, which: int, position: int, new: str
) -> None:
    text = render_paper(key, now=NOW)
    lines = text.splitlines()
    index = _checked_lines(text)[which % len(_checked_lines(text))]
    line = lines[index]
    at = position % len(line)
    old = line[at]
    if new.lower() == old.lower() or (new.isspace() and old.isspace()):
        return  # not a change that matters: case and spacing are free
    lines[index] = line[:at] + new + line[at + 1 :]
    label = line.split(":")[0]
    with pytest.raises(PaperFormError) as exc:
        read_paper("\n".join(lines))
    # the line is named: by its number in the text, or (turned into a comment) by its label
    assert exc.value.line == index + 1 or (exc.value.line is None and exc.value.label == label)
    assert key.hex() not in str(exc.value)
    assert not re.search(r"[0-9a-f]{4} [0-9a-f]{4}", str(exc.value))


def test_the_documented_paper_form_reads_back() -> None:
    """docs/secrets.md shows the sheet of an example key: it must read back, checks and all."""
    doc = (Path(__file__).parents[2] / "docs" / "secrets.md").read_text()
    (sheet,) = re.findall(r"```\n(# gocdbackup paper key.*?)```", doc, flags=re.S)
    got = read_paper(sheet)
    assert got.key == bytes.fromhex("0123456789abcdef" * 4)
    assert got.written == date(2025, 1, 31)
