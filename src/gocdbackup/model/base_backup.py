"""A physical base backup as pg_basebackup writes it to stdout (``-D - -Ft``): one tar of the
data directory whose last member is the backup manifest.  :class:`TarCheck` is fed the stream
as it passes into the repository and checks it against that manifest the way
``pg_verifybackup`` checks files: every file the manifest lists is present with its size and
checksum (CRC32C or SHA-256), no other file is, and the manifest's own SHA-256 holds.  Its
WAL range gives the backup's consistency point (the LSN where the copy is consistent).

Facts of the formats used here: a tar member is a 512-byte header (name at 0, size in octal at
124, type at 156, ustar prefix at 345) and its data padded to 512 bytes; the manifest is JSON
with ``Files`` (``Path``, ``Size``, ``Checksum-Algorithm``, ``Checksum``), ``WAL-Ranges``
(``Timeline``, ``Start-LSN``, ``End-LSN``) and a closing ``Manifest-Checksum``: the SHA-256 of
everything before that key.  A CRC32C checksum is written as the value's 4 bytes,
little-endian, in hex.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import google_crc32c
from attrs import frozen

MANIFEST_NAME = "backup_manifest"
_BLOCK = 512
_SKIPPED_TYPES = {b"5", b"2", b"1"}  # directories, symlinks, hard links: no data to check


@frozen(kw_only=True)
class WalRange:
    timeline: int
    start_lsn: str
    end_lsn: str


@frozen(kw_only=True)
class BaseBackupCheck:
    """What :meth:`TarCheck.finish` found."""

    files: int
    bytes: int
    problems: tuple[str, ...]
    wal_ranges: tuple[WalRange, ...]
    system_identifier: int | None

    @property
    def ok(self) -> bool:
        return not self.problems


class _Crc:
    """CRC32C (google-crc32c's C implementation; the package ships no type hints)."""

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes | memoryview) -> None:
        self._value = int(google_crc32c.extend(self._value, bytes(data)))

    def hexdigest(self) -> str:
        return self._value.to_bytes(4, "little").hex()


class TarCheck:
    """Fed a tar stream in order (:meth:`feed`); :meth:`finish` checks it against its manifest.
    ``sink`` (optional) receives each member as it is read: ``sink(name, kind, data)`` with
    ``kind`` "start" (data: the 512-byte header), "data", or "end"."""

    def __init__(self, sink: Callable[[str, str, bytes], None] | None = None) -> None:
        self._sink = sink
        self._buf = bytearray()
        self._name = ""
        self._left = 0  # data bytes of the current member still to come
        self._size = 0  # the current member's size
        self._pad = 0
        self._kind = b"0"
        self._sha = hashlib.sha256()
        self._crc = _Crc()
        self._manifest = bytearray()
        self._ended = False
        self.members: dict[str, tuple[int, str, str]] = {}  # name -> (size, crc32c, sha256)
        self.total = 0

    def feed(self, data: bytes | memoryview) -> None:
        self._buf += data
        view = memoryview(self._buf)
        at = 0
        while at < len(view) and not self._ended:
            if self._left:
                take = min(self._left, len(view) - at)
                self._member_data(view[at : at + take])
                at += take
                self._left -= take
                if not self._left:
                    self._close_member()
            elif self._pad:
                take = min(self._pad, len(view) - at)
                at += take
                self._pad -= take
            elif len(view) - at >= _BLOCK:
                self._header(bytes(view[at : at + _BLOCK]))
                at += _BLOCK
            else:
                break
        view.release()
        del self._buf[:at]

    def _header(self, block: bytes) -> None:
        if block == bytes(_BLOCK):
            self._ended = True  # the end-of-archive blocks
            return
        name = block[0:100].split(b"\0", 1)[0].decode()
        prefix = block[345:500].split(b"\0", 1)[0].decode()
        self._name = f"{prefix}/{name}" if prefix else name
        self._kind = block[156:157]
        raw = block[124:136]
        # octal digits, or (for 8 GiB and more) a base-256 number flagged by the high bit
        if raw[0] & 0x80:
            size = int.from_bytes(raw[1:], "big")
        else:
            size = int(raw.strip(b"\0 ") or b"0", 8)
        self._left = self._size = 0 if self._kind in _SKIPPED_TYPES else size
        self._pad = (-size) % _BLOCK if self._left else 0
        self._sha, self._crc = hashlib.sha256(), _Crc()
        if self._sink is not None:
            self._sink(self._name, "start", block)
        if not self._left:
            self._close_member()

    def _member_data(self, data: memoryview) -> None:
        self.total += len(data)
        if self._name == MANIFEST_NAME:
            self._manifest += data
        else:
            self._sha.update(data)
            self._crc.update(data)
        if self._sink is not None:
            self._sink(self._name, "data", bytes(data))

    def _close_member(self) -> None:
        if self._kind not in _SKIPPED_TYPES and self._name != MANIFEST_NAME:
            crc, sha = self._crc.hexdigest(), self._sha.hexdigest()
            self.members[self._name] = (self._size, crc, sha)
        if self._sink is not None:
            self._sink(self._name, "end", b"")

    @property
    def manifest(self) -> bytes:
        return bytes(self._manifest)

    def finish(self) -> BaseBackupCheck:
        return check_against_manifest(self.manifest, self.members, self.total)


def check_against_manifest(
    manifest: bytes, members: dict[str, tuple[int, str, str]], total: int = 0
) -> BaseBackupCheck:
    """Every file ``manifest`` lists must be among ``members`` with its size and checksum, and
    no other file may be; the manifest's own checksum must hold."""
    problems: list[str] = []
    if not manifest:
        return BaseBackupCheck(
            files=len(members),
            bytes=total,
            problems=("the stream holds no backup_manifest",),
            wal_ranges=(),
            system_identifier=None,
        )
    doc: dict[str, Any] = json.loads(manifest)
    key = manifest.rfind(b'"Manifest-Checksum"')
    if key < 0 or hashlib.sha256(manifest[:key]).hexdigest() != doc.get("Manifest-Checksum"):
        problems.append("the backup manifest's own checksum does not match")
    listed = {f["Path"]: f for f in doc.get("Files", [])}
    for path, entry in listed.items():
        found = members.get(path)
        if found is None:
            problems.append(f"{path} is in the manifest but not in the backup")
            continue
        size, crc, sha = found
        if size != entry["Size"]:
            problems.append(f"{path} has {size} bytes, the manifest says {entry['Size']}")
            continue
        algorithm = entry.get("Checksum-Algorithm", "NONE")
        want = {"CRC32C": crc, "SHA256": sha}.get(algorithm)
        if want is not None and want != entry["Checksum"].lower():
            problems.append(f"{path} does not match its {algorithm} checksum")
    for path in members:
        if path not in listed and not path.startswith("pg_wal/"):
            problems.append(f"{path} is in the backup but not in the manifest")
    ranges = tuple(
        WalRange(timeline=int(r["Timeline"]), start_lsn=r["Start-LSN"], end_lsn=r["End-LSN"])
        for r in doc.get("WAL-Ranges", [])
    )
    system = doc.get("System-Identifier")
    return BaseBackupCheck(
        files=len(members),
        bytes=total,
        problems=tuple(problems),
        wal_ranges=ranges,
        system_identifier=None if system is None else int(system),
    )
