"""pg_dump's custom-format archive, read as far as a parallel restore needs: the header and the
table of contents at the start of the stream (each entry's id, kind, section, name and
definition), and the framing of its data blocks.

Facts of the format used here (archive versions 1.10 to 1.16, pg_dump 9.0 to 18): an integer
is a sign byte and ``int_size`` little-endian bytes; a string is an integer length (negative:
NULL) and that many bytes; the table of contents follows the header, and each entry ends with
the custom format's data offset (a flag byte and ``off_size`` bytes).  A data block is a block
type byte (1 for a table's rows), the entry's id, then frames (a length, then that many bytes
of COPY text: one row each when uncompressed), ended by a frame of length 0.

Nothing here does I/O: the reader works on bytes already in memory and raises
:class:`ArchiveTruncated` when it needs more of them.
"""

from __future__ import annotations

from attrs import frozen

MAGIC = b"PGDMP"
BLOCK_DATA = 1

SECTION_NONE = 1
SECTION_PRE_DATA = 2
SECTION_DATA = 3
SECTION_POST_DATA = 4

_OFFSET_NO_DATA = 3
_FORMAT_CUSTOM = 1


def _version(major: int, minor: int, rev: int = 0) -> int:
    return (major * 256 + minor) * 256 + rev


OLDEST = _version(1, 10)  # pg_dump 9.0
NEWEST = _version(1, 16)  # pg_dump 17 and 18


class ArchiveTruncated(Exception):
    """The bytes end before the header and table of contents do."""


class ArchiveUnsupported(Exception):
    """Not an archive this reader knows (another format, version or compression)."""


@frozen(kw_only=True)
class TocEntry:
    """One entry of the table of contents."""

    dump_id: int
    desc: str  # "TABLE", "TABLE DATA", "INDEX", "SEQUENCE SET", ...
    section: int  # SECTION_PRE_DATA, SECTION_DATA, SECTION_POST_DATA or SECTION_NONE
    namespace: str
    tag: str  # the object's name (for TABLE DATA: the table's)
    defn: str  # the SQL that makes it (for SEQUENCE SET: the setval call)
    has_data: bool  # a data block of this id follows the table of contents

    @property
    def qualified(self) -> str:
        return f"{self.namespace}.{self.tag}" if self.namespace else self.tag


@frozen(kw_only=True)
class ArchiveToc:
    """The header's facts and the table of contents of a custom-format archive."""

    version: str  # "1.16.0"
    int_size: int
    compressed: bool
    toc_end: int  # the offset of the first data block (the end of the table of contents)
    entries: tuple[TocEntry, ...]

    def data_ids(self) -> frozenset[int]:
        return frozenset(e.dump_id for e in self.entries if e.has_data)

    def entry(self, dump_id: int) -> TocEntry:
        for e in self.entries:
            if e.dump_id == dump_id:
                return e
        raise KeyError(dump_id)


class _Reader:
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.data = data
        self.pos = 0
        self.int_size = 4

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ArchiveTruncated
        out = bytes(self.data[self.pos : end])
        self.pos = end
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def int(self) -> int:
        sign = self.byte()
        value = int.from_bytes(self.take(self.int_size), "little")
        return -value if sign else value

    def str(self) -> str | None:
        n = self.int()
        if n < 0:
            return None
        return self.take(n).decode("utf-8", errors="replace")


def read_toc(data: bytes | bytearray | memoryview) -> ArchiveToc:
    """The header and table of contents at the start of ``data``.

    Raises :class:`ArchiveTruncated` if ``data`` ends first, :class:`ArchiveUnsupported` if it
    is not an uncompressed-or-compressed custom-format archive of a known version."""
    r = _Reader(data)
    if r.take(len(MAGIC)) != MAGIC:
        raise ArchiveUnsupported("not a custom-format archive")
    major, minor, rev = r.byte(), r.byte(), r.byte()
    version = _version(major, minor, rev)
    if not OLDEST <= version < NEWEST + 256:
        raise ArchiveUnsupported(f"archive version {major}.{minor}.{rev}")
    r.int_size = r.byte()
    off_size = r.byte()
    if r.byte() != _FORMAT_CUSTOM:
        raise ArchiveUnsupported("not the custom format")
    # the compression: an algorithm byte since 1.15, a level before
    compressed = (r.byte() if version >= _version(1, 15) else r.int()) != 0
    for _ in range(7):  # the time the dump started
        r.int()
    for _ in range(3):  # database name, server version, pg_dump version
        r.str()
    entries = tuple(_entry(r, version, off_size) for _ in range(r.int()))
    return ArchiveToc(
        version=f"{major}.{minor}.{rev}",
        int_size=r.int_size,
        compressed=compressed,
        toc_end=r.pos,
        entries=entries,
    )


def _entry(r: _Reader, version: int, off_size: int) -> TocEntry:
    dump_id = r.int()
    r.int()  # had a data dumper
    r.str()  # table oid
    r.str()  # oid
    tag = r.str() or ""
    desc = r.str() or ""
    section = r.int() if version >= _version(1, 11) else SECTION_NONE
    defn = r.str() or ""
    r.str()  # drop statement
    r.str()  # copy statement
    namespace = r.str() or ""
    r.str()  # tablespace
    if version >= _version(1, 14):
        r.str()  # table access method
    if version >= _version(1, 16):
        r.int()  # relkind
    r.str()  # owner
    r.str()  # with oids
    while r.str() is not None:  # dependencies, ended by NULL
        pass
    flag = r.byte()
    r.take(off_size)
    return TocEntry(
        dump_id=dump_id,
        desc=desc,
        section=section,
        namespace=namespace,
        tag=tag,
        defn=defn,
        has_data=flag != _OFFSET_NO_DATA,
    )


def encode_int(value: int, int_size: int) -> bytes:
    """An integer as the archive writes it."""
    return bytes([1 if value < 0 else 0]) + abs(value).to_bytes(int_size, "little")


def block_header(dump_id: int, int_size: int) -> bytes:
    """The start of entry ``dump_id``'s data block."""
    return bytes([BLOCK_DATA]) + encode_int(dump_id, int_size)


def end_frame(int_size: int) -> bytes:
    """The frame of length 0 that ends a data block."""
    return encode_int(0, int_size)
