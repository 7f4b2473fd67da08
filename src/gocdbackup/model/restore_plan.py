"""How a dump with a recorded layout is restored in three phases, as pg_restore's sections are:
the schema (pre-data), then every table's rows loaded concurrently, a large table's rows cut
into pieces loaded side by side, then the indexes, constraints and triggers (post-data).

Only pure decisions live here: which entries each phase takes, where a table may be cut, and
the bytes each piece of pg_restore input is made of.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

from attrs import frozen

from gocdbackup.model.archive_layout import ArchiveLayout, DataBlock
from gocdbackup.model.pg_archive import (
    SECTION_DATA,
    SECTION_NONE,
    SECTION_PRE_DATA,
    ArchiveToc,
    TocEntry,
)

#: a table is cut into pieces of at least this many bytes (fewer, larger pieces below it)
MIN_PIECE_BYTES = 32 * 1024 * 1024
#: how far past a planned cut a frame boundary is looked for
CUT_WINDOW_BYTES = 1024 * 1024

_DATA_KINDS = {"TABLE DATA", "SEQUENCE SET"}
#: entries --no-acl leaves out wherever they stand
_SKIPPED = {"ACL", "DEFAULT ACL", "ACL LANGUAGE"}


@frozen(kw_only=True)
class TableLoad:
    """One table's rows: its TOC entry and data block."""

    entry: TocEntry
    block: DataBlock

    @property
    def name(self) -> str:
        return self.entry.qualified


@frozen(kw_only=True)
class Piece:
    """Bytes ``[start, end)`` of ``table``'s data block, loaded by one pg_restore.  A piece
    that does not start the block gets the block's header put before it; one that does not
    end it, the frame of length 0 after it."""

    table: TableLoad
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def first(self) -> bool:
        return self.start == self.table.block.start

    @property
    def last(self) -> bool:
        return self.end == self.table.block.end


@frozen(kw_only=True)
class RestorePlan:
    """The data phase of a restore: the tables (largest first) and the sequences to set."""

    tables: tuple[TableLoad, ...]
    #: (schema, sequence names) whose SEQUENCE SET entries are restored by name
    sequences: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def data_bytes(self) -> int:
        return sum(t.block.size for t in self.tables)


def effective_sections(toc: ArchiveToc) -> Iterator[tuple[TocEntry, int]]:
    """Each entry with the section pg_restore files it under: an entry of no section (a
    comment, say) belongs to the section of the entry before it."""
    current = SECTION_PRE_DATA
    for entry in toc.entries:
        if entry.section != SECTION_NONE:
            current = entry.section
        yield entry, current


def plan_restore(toc: ArchiveToc, layout: ArchiveLayout) -> RestorePlan | str:
    """The plan, or why this archive must be restored as one stream (its data section holds
    something other than tables' rows and sequence values, or the layout and the table of
    contents disagree)."""
    blocks = {b.dump_id: b for b in layout.blocks}
    tables: list[TableLoad] = []
    sequences: dict[str, list[str]] = {}
    for entry, section in effective_sections(toc):
        if entry.desc in _SKIPPED:
            continue
        if entry.has_data != (entry.dump_id in blocks):
            return f"the layout and the table of contents disagree on entry {entry.dump_id}"
        if section != SECTION_DATA and not entry.has_data:
            continue
        if section != SECTION_DATA or entry.desc not in _DATA_KINDS:
            return f"its data section holds a {entry.desc or 'nameless'} entry"
        if entry.desc == "TABLE DATA":
            if not entry.has_data:
                return f"table {entry.qualified} has no data block"
            tables.append(TableLoad(entry=entry, block=blocks[entry.dump_id]))
        else:
            sequences.setdefault(entry.namespace, []).append(entry.tag)
    tables.sort(key=lambda t: t.block.size, reverse=True)
    return RestorePlan(
        tables=tuple(tables),
        sequences=tuple((schema, tuple(names)) for schema, names in sequences.items()),
    )


def cut_targets(block: DataBlock, jobs: int, min_piece: int = MIN_PIECE_BYTES) -> list[int]:
    """Where to look for the cuts of ``block`` into at most ``jobs`` pieces of at least
    ``min_piece`` bytes (none for a block too small to cut)."""
    pieces = min(jobs, block.size // min_piece)
    return [block.start + block.size * k // pieces for k in range(1, pieces)]


def pieces_of(table: TableLoad, cuts: list[int]) -> list[Piece]:
    """``table``'s pieces between the frame boundaries ``cuts`` (in order, inside the
    block)."""
    edges = [table.block.start, *cuts, table.block.end]
    return [Piece(table=table, start=a, end=b) for a, b in pairwise(edges)]
