"""Reading a custom-format archive's table of contents, finding each table's data block in a
stream fed in any pieces, cutting a block at a frame boundary, and planning a restore by
tables.  The archives here are written by a small writer of the format's published layout;
real pg_dump output is read in tests/integration/test_table_restore.py."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gocdbackup.model.archive_layout import COPY_END, LayoutScanner, frame_boundary
from gocdbackup.model.pg_archive import (
    SECTION_DATA,
    SECTION_NONE,
    SECTION_POST_DATA,
    SECTION_PRE_DATA,
    ArchiveTruncated,
    encode_int,
    read_toc,
)
from gocdbackup.model.restore_plan import cut_targets, pieces_of, plan_restore

Entry = tuple[int, str, int, str, bool]  # dump id, desc, section, tag, has data


def _int(v: int) -> bytes:
    return encode_int(v, 4)


def _str(s: str | None) -> bytes:
    if s is None:
        return _int(-1)
    raw = s.encode()
    return _int(len(raw)) + raw


def write_archive(
    entries: list[Entry],
    blocks: list[tuple[int, list[bytes]]],
    *,
    version: tuple[int, int, int] = (1, 16, 0),
    compression: int = 0,
) -> tuple[bytes, int, list[tuple[int, int, int]]]:
    """(archive, end of its TOC, [(dump id, block start, block end)]); one frame per row."""
    out = bytearray(b"PGDMP" + bytes(version) + bytes([4, 8, 1]))
    out += bytes([compression]) if version >= (1, 15, 0) else _int(compression)
    for _ in range(7):
        out += _int(0)
    for s in ("gocdnext", "18.1", "18.1"):
        out += _str(s)
    out += _int(len(entries))
    for dump_id, desc, section, tag, has_data in entries:
        out += _int(dump_id) + _int(int(has_data)) + _str("0") + _str("0") + _str(tag)
        out += _str(desc) + _int(section) + _str(f"-- {desc} {tag}") + _str("") + _str("")
        out += _str("public") + _str("")
        if version >= (1, 14, 0):
            out += _str("heap")
        if version >= (1, 16, 0):
            out += _int(ord("r"))
        out += _str("gocdnext") + _str("false") + _str("1") + _str(None)
        out += bytes([1 if has_data else 3]) + bytes(8)
    toc_end = len(out)
    ranges = []
    for dump_id, rows in blocks:
        start = len(out)
        out += bytes([1]) + _int(dump_id)
        for row in [*rows, COPY_END]:
            out += _int(len(row)) + row
        out += _int(0)
        ranges.append((dump_id, start, len(out)))
    return bytes(out), toc_end, ranges


# rows of COPY text: no newline, no zero byte inside; lengths around 10 and 2560-2815 give
# length fields holding the bytes 0x0a 0x00
row = st.builds(
    lambda text, pad: (text + "x" * pad).encode() + b"\n",
    st.text(alphabet="ab\t\\01 é", max_size=20),
    st.sampled_from([0, 0, 0, 9, 2560, 2700]),
)
tables = st.lists(st.lists(row, max_size=12), min_size=1, max_size=5)


def _entries(n: int) -> list[Entry]:
    return [
        (1, "ENCODING", SECTION_PRE_DATA, "ENCODING", False),
        *[(10 + i, "TABLE", SECTION_PRE_DATA, f"t{i}", False) for i in range(n)],
        *[(100 + i, "TABLE DATA", SECTION_DATA, f"t{i}", True) for i in range(n)],
        (200, "SEQUENCE SET", SECTION_DATA, "t0_id_seq", False),
        (300, "INDEX", SECTION_POST_DATA, "t0_pkey", False),
    ]


def _scan(data: bytes, cuts: list[int]) -> LayoutScanner:
    scanner = LayoutScanner()
    edges = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for a, b in itertools.pairwise(edges):
        scanner.feed(data[a:b])
    return scanner


@given(tables, st.lists(st.integers(0, 10**9), max_size=20))
@settings(max_examples=150)
def test_the_scanner_finds_every_block_however_the_stream_is_cut(
    rows: list[list[bytes]], cuts: list[int]
) -> None:
    blocks = [(100 + i, r) for i, r in enumerate(rows)]
    data, toc_end, ranges = write_archive(_entries(len(rows)), blocks)
    scanner = _scan(data, cuts)
    layout = scanner.finish()
    assert scanner.why is None
    assert layout is not None
    assert layout.toc_end == toc_end
    assert [(b.dump_id, b.start, b.end) for b in layout.blocks] == ranges
    layout.check_within(len(data))


def test_the_table_of_contents_reads_as_written() -> None:
    data, toc_end, _ = write_archive(_entries(2), [(100, [b"1\ta\n"]), (101, [])])
    toc = read_toc(data)
    assert (toc.version, toc.int_size, toc.compressed, toc.toc_end) == ("1.16.0", 4, False, toc_end)
    assert [(e.dump_id, e.desc, e.tag, e.has_data) for e in toc.entries][1:4] == [
        (10, "TABLE", "t0", False),
        (11, "TABLE", "t1", False),
        (100, "TABLE DATA", "t0", True),
    ]
    assert toc.entry(100).qualified == "public.t0"
    assert toc.data_ids() == {100, 101}


@pytest.mark.parametrize("version", [(1, 12, 0), (1, 14, 0), (1, 15, 0)])
def test_older_archive_versions_read(version: tuple[int, int, int]) -> None:
    data, toc_end, ranges = write_archive(_entries(1), [(100, [b"x\n"])], version=version)
    assert read_toc(data).toc_end == toc_end
    layout = _scan(data, []).finish()
    assert layout is not None
    assert [(b.start, b.end) for b in layout.blocks] == [ranges[0][1:]]


@given(st.integers(0, 10**6))
def test_a_cut_table_of_contents_asks_for_more(at: int) -> None:
    data, toc_end, _ = write_archive(_entries(2), [(100, []), (101, [])])
    with pytest.raises(ArchiveTruncated):
        read_toc(data[: at % toc_end])


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: b"PGDMQ" + d[5:], "not a custom-format archive"),
        (lambda d: d[:5] + bytes([1, 9, 0]) + d[8:], "archive version 1.9.0"),
        (lambda d: d[:5] + bytes([1, 17, 0]) + d[8:], "archive version 1.17.0"),
        (lambda d: d[:10] + bytes([3]) + d[11:], "not the custom format"),
        (lambda d: d[:11] + bytes([1]) + d[12:], "compressed"),
    ],
)
def test_archives_it_cannot_take_give_no_layout(mutate: object, why: str) -> None:
    data, _, _ = write_archive(_entries(1), [(100, [b"x\n"])])
    scanner = _scan(mutate(data), [7, 100])  # type: ignore[operator]
    assert scanner.finish() is None
    assert scanner.why is not None
    assert why in scanner.why


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("missing", "missing"),
        ("unknown id", "unexpected id"),
        ("trailing", "not ended"),
        ("blobs", "missing"),  # a large-object block is not a table's: the ids fall short
        ("unended", "not ended"),
    ],
)
def test_blocks_that_disagree_with_the_toc_give_no_layout(change: str, why: str) -> None:
    entries = _entries(2)
    blocks = [(100, [b"a\n"]), (101, [b"b\n"])]
    if change == "missing":
        blocks = blocks[:1]
    elif change == "unknown id":
        blocks[1] = (555, [b"b\n"])
    data, _, ranges = write_archive(entries, blocks)
    if change == "trailing":
        data += b"junk"
    elif change == "blobs":
        data = data[: ranges[1][1]] + bytes([3]) + data[ranges[1][1] + 1 :]
    elif change == "unended":
        data = data[:-5]
    scanner = _scan(data, [len(data) - 3])
    assert scanner.finish() is None
    assert scanner.why is not None
    assert why in scanner.why


def test_bytes_after_a_toc_without_data_give_no_layout() -> None:
    data, _, _ = write_archive([(1, "TABLE", SECTION_PRE_DATA, "t", False)], [])
    scanner = _scan(data + b"\x01junk", [])
    assert scanner.finish() is None
    assert scanner.why is not None
    assert "follow the last data block" in scanner.why


@given(tables, st.integers(0, 10**9))
@settings(max_examples=200)
def test_a_cut_falls_only_on_a_frame_boundary(rows: list[list[bytes]], at: int) -> None:
    body = b"".join(_int(len(r)) + r for r in [*rows[0], COPY_END])
    starts, pos = set(), 0
    for r in [*rows[0], COPY_END]:
        starts.add(pos)
        pos += 5 + len(r)
    found = frame_boundary(body, at % (len(body) + 1), 4)
    assert found is None or found in starts


def test_a_cut_is_found_near_the_asked_place() -> None:
    rows = [b"%d\tline %d\n" % (i, i) for i in range(1000)]
    body = b"".join(_int(len(r)) + r for r in rows)
    found = frame_boundary(body, len(body) // 2, 4)
    assert found is not None
    assert len(body) // 2 <= found < len(body) // 2 + 40


def test_a_plan_takes_tables_largest_first_and_sequences_by_schema() -> None:
    data, _, _ = write_archive(_entries(3), [(100, [b"a\n"]), (101, [b"b\n"] * 9), (102, [])])
    layout = _scan(data, []).finish()
    assert layout is not None
    plan = plan_restore(read_toc(data), layout)
    assert not isinstance(plan, str)
    assert [t.name for t in plan.tables] == ["public.t1", "public.t0", "public.t2"]
    assert plan.sequences == (("public", ("t0_id_seq",)),)
    assert plan.data_bytes == sum(b.size for b in layout.blocks)


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ((400, "STATISTICS DATA", SECTION_DATA, "t0", False), "STATISTICS DATA"),
        ((401, "COMMENT", SECTION_NONE, "t0", False), "COMMENT"),  # files under data
        ((402, "ACL", SECTION_NONE, "t0", False), None),  # --no-acl leaves it out
    ],
)
def test_a_data_section_with_other_entries_is_restored_as_one_stream(
    extra: Entry, why: str | None
) -> None:
    entries = _entries(1)
    entries.insert(3, extra)  # after the table's data
    data, _, _ = write_archive(entries, [(100, [b"a\n"])])
    layout = _scan(data, []).finish()
    assert layout is not None
    plan = plan_restore(read_toc(data), layout)
    if why is None:
        assert not isinstance(plan, str)
    else:
        assert isinstance(plan, str)
        assert why in plan


def test_cuts_make_pieces_of_at_least_the_minimum() -> None:
    data, _, _ = write_archive(_entries(1), [(100, [b"a\n"] * 100)])
    layout = _scan(data, []).finish()
    assert layout is not None
    plan = plan_restore(read_toc(data), layout)
    assert not isinstance(plan, str)
    table = plan.tables[0]
    block = table.block
    assert cut_targets(block, 4, min_piece=block.size) == []
    targets = cut_targets(block, 4, min_piece=block.size // 3)
    assert len(targets) == 2
    assert block.start < targets[0] < targets[1] < block.end
    pieces = pieces_of(table, targets)
    assert [p.first for p in pieces] == [True, False, False]
    assert [p.last for p in pieces] == [False, False, True]
    assert sum(p.size for p in pieces) == block.size
