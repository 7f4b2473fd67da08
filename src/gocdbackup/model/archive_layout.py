"""Where each table's rows lie in a custom-format dump stream, found while the stream passes
through a backup, so that a restore can load the tables concurrently without reading the
stream in order.

A dump written to a pipe has no data offsets in its table of contents (pg_dump cannot seek
back to write them), which is why ``pg_restore -j`` cannot take it.  :class:`LayoutScanner`
finds them instead, at the cost of a byte search: in an uncompressed archive the frames of a
data block hold COPY text, which never contains a zero byte, so the only run of
``1 + int_size`` zero bytes after a block's first frame is the frame of length 0 that ends it,
and the next block's header follows it.  The ids found are checked against the table of
contents: anything unexpected (a large-object block, a compressed archive, an unknown version)
gives no layout, and that backup restores as one stream, as before.
"""

from __future__ import annotations

from attrs import frozen

from gocdbackup.model.pg_archive import (
    BLOCK_DATA,
    ArchiveToc,
    ArchiveTruncated,
    ArchiveUnsupported,
    read_toc,
)

#: how pg_dump ends a table's COPY text (the end-of-data line and two empty lines)
COPY_END = b"\\.\n\n\n"
#: the table of contents must be read within this many bytes (a schema of ~100,000 objects)
TOC_LIMIT = 256 * 1024 * 1024


@frozen(kw_only=True)
class DataBlock:
    """Entry ``dump_id``'s data block: bytes ``[start, end)`` of the stream, from its block
    header to the end of its frame of length 0."""

    dump_id: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@frozen(kw_only=True)
class ArchiveLayout:
    """The byte ranges a parallel restore needs: the header and table of contents
    ``[0, toc_end)``, and every data block."""

    toc_end: int
    int_size: int
    blocks: tuple[DataBlock, ...]

    def block(self, dump_id: int) -> DataBlock:
        for b in self.blocks:
            if b.dump_id == dump_id:
                return b
        raise KeyError(dump_id)

    def check_within(self, size: int) -> None:
        """ValueError unless the blocks follow the table of contents, in order, without
        overlapping, within a stream of ``size`` bytes."""
        at = self.toc_end
        if not 0 < at <= size or self.int_size not in (4, 8):
            raise ValueError("the archive layout does not fit its stream")
        ids = set()
        for b in self.blocks:
            if b.start < at or b.end <= b.start or b.end > size or b.dump_id in ids:
                raise ValueError(f"the archive layout's block {b.dump_id} does not fit")
            ids.add(b.dump_id)
            at = b.end


class LayoutScanner:
    """Fed a dump stream's bytes in order (:meth:`feed`), gives its :class:`ArchiveLayout` at
    the end (:meth:`finish`), or None with the reason in :attr:`why`.  Memory stays bounded:
    past the table of contents only the last few bytes are kept."""

    def __init__(self, toc_limit: int = TOC_LIMIT) -> None:
        self._limit = toc_limit
        self._head = bytearray()  # the stream until its table of contents is read
        self._buf = b""
        self._base = 0  # stream offset of _buf[0]
        self._toc: ArchiveToc | None = None
        self._blocks: list[DataBlock] = []
        self._expected: set[int] = set()
        self._current: tuple[int, int] | None = None  # (dump_id, start) of the open block
        self._next_start: int | None = None  # a block header begins here (not yet read)
        self._search_from = 0
        self.why: str | None = None

    def feed(self, data: bytes) -> None:
        if self.why is not None:
            return
        if self._toc is None:
            self._head += data
            if not self._read_toc():
                return
            self._buf, self._head = bytes(self._head), bytearray()
        else:
            self._buf = self._buf + data if self._buf else data
        self._scan()

    def _read_toc(self) -> bool:
        try:
            toc = read_toc(self._head)
        except ArchiveTruncated:
            if len(self._head) > self._limit:
                self._give_up("its table of contents is larger than the scanner reads")
            return False
        except ArchiveUnsupported as exc:
            self._give_up(str(exc))
            return False
        if toc.compressed:
            self._give_up("its data is compressed by pg_dump")
            return False
        self._toc = toc
        self._expected = set(toc.data_ids())
        self._next_start = toc.toc_end
        return True

    def _give_up(self, why: str) -> None:
        self.why = why
        self._head, self._buf = bytearray(), b""

    def _scan(self) -> None:
        assert self._toc is not None
        isz = self._toc.int_size
        ending = COPY_END + b"\x00" * (1 + isz)
        pattern = ending + bytes([BLOCK_DATA, 0])
        while self.why is None:
            if self._next_start is not None:
                if not self._open_block(self._next_start, isz):
                    break
                continue
            at = self._buf.find(pattern, max(self._search_from - self._base, 0))
            if at < 0:
                # keep what could still be the start of a match
                self._search_from = self._base + max(len(self._buf) - len(pattern) + 1, 0)
                break
            self._close_block(self._base + at + len(ending))
        self._trim()

    def _open_block(self, start: int, isz: int) -> bool:
        """Read the block header (and first frame header) at ``start``; False: need bytes."""
        rel = start - self._base
        head = 2 + isz + 1 + isz
        if len(self._buf) - rel < head:
            return False
        if self._buf[rel] != BLOCK_DATA:
            self._give_up(f"it holds a data block of type {self._buf[rel]}")
            return False
        dump_id = int.from_bytes(self._buf[rel + 2 : rel + 2 + isz], "little")
        if self._buf[rel + 1] != 0 or dump_id not in self._expected:
            self._give_up(f"a data block of an unexpected id ({dump_id}) at byte {start}")
            return False
        self._expected.discard(dump_id)
        self._current = (dump_id, start)
        self._next_start = None
        first = int.from_bytes(self._buf[rel + 3 + isz : rel + head], "little")
        if first == 0:  # no rows at all: the block ends with its first frame
            self._close_block(start + head)
        else:
            self._search_from = start + head
        return True

    def _close_block(self, end: int) -> None:
        assert self._current is not None
        dump_id, start = self._current
        self._blocks.append(DataBlock(dump_id=dump_id, start=start, end=end))
        self._current = None
        self._next_start = end

    def _trim(self) -> None:
        if self._toc is None or self.why is not None:
            return
        upto = self._search_from if self._next_start is None else self._next_start
        drop = min(max(upto - self._base, 0), len(self._buf))
        if drop:
            self._buf = self._buf[drop:]
            self._base += drop

    def finish(self) -> ArchiveLayout | None:
        """The layout of the whole stream (call once, after the last :meth:`feed`)."""
        if self.why is not None:
            return None
        if self._toc is None:
            self._give_up("the stream ends inside its table of contents")
            return None
        isz = self._toc.int_size
        total = self._base + len(self._buf)
        if self._current is not None:
            if not self._buf.endswith(COPY_END + b"\x00" * (1 + isz)):
                self._give_up("the last data block is not ended")
                return None
            self._close_block(total)
        elif self._next_start != total:
            self._give_up("bytes follow the last data block")
            return None
        if self._expected:
            self._give_up(f"{len(self._expected)} data block(s) of the table of contents missing")
            return None
        return ArchiveLayout(toc_end=self._toc.toc_end, int_size=isz, blocks=tuple(self._blocks))


def frame_boundary(data: bytes, at: int, int_size: int, *, check: int = 3) -> int | None:
    """A frame boundary in ``data`` (a stretch, under 16 MiB, of an uncompressed data block's
    frames) at or after ``at``: the offset of a frame header that follows a row's newline and
    starts ``check`` frames in a row that each hold exactly one row (one newline, at its end).
    None if there is none in ``data``.

    Exact, not a guess: a newline followed by a zero byte is either a row's end and the next
    frame's header, or lies inside a length field (a byte 0x0a before a byte 0x00); read from
    there, the length takes a row's first bytes (never zero) as its high bytes, so it is at
    least 16 MiB and runs past ``data``, and the candidate is refused."""
    hdr = 1 + int_size
    q = data.find(b"\n\x00", max(at - 1, 0))
    while q >= 0:
        pos = q + 1
        if _frames_hold(data, pos, int_size, hdr, check):
            return pos
        q = data.find(b"\n\x00", q + 1)
    return None


def _frames_hold(data: bytes, pos: int, int_size: int, hdr: int, check: int) -> bool:
    for _ in range(check):
        if pos + hdr > len(data) or data[pos] != 0:
            return False
        length = int.from_bytes(data[pos + 1 : pos + hdr], "little")
        end = pos + hdr + length
        if length == 0 or end > len(data):
            return False
        if data.count(b"\n", pos + hdr, end) != 1 or data[end - 1] != 0x0A:
            return False
        pos = end
    return True
