"""Orphan reconciliation, the pure core: the classes a key can land in, and the streaming merge
of the database's referenced keys with the store's listing (two sorted streams, one pass,
bounded memory)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from attrs import field, frozen

from gocdbackup.errors import OutOfOrder
from gocdbackup.gocdnext.layouts import PARTIAL_SUFFIX, PENDING_TIMEOUT, in_layout

_T = TypeVar("_T")


class OrphanClass(enum.Enum):
    # rows without objects
    MISSING_OBJECT = "missing_object"  # a ready artefact/cache or stamped log, no object
    PENDING_STALE = "pending_stale"  # pending for longer than gocdnext's reaper threshold
    DELETING_LEFTOVER = "deleting_leftover"  # a row in deleting whose object is already gone
    # objects without rows
    ORPHAN_OBJECT = "orphan_object"  # in one of gocdnext's layouts, no row references it
    FOREIGN_OBJECT = "foreign_object"  # outside gocdnext's layouts: never touched by default
    PARTIAL_UPLOAD = "partial_upload"  # a ``*.part`` leftover of the filesystem backend
    # both present
    OK = "ok"
    SIZE_MISMATCH = "size_mismatch"
    SHA_MISMATCH = "sha_mismatch"  # only when content is verified
    # either side newer than the grace window: never acted on
    TOO_RECENT = "too_recent"

    @property
    def side(self) -> str:
        """``row`` (a row without its object), ``object`` (an object without a row), ``both``
        or ``either`` (too recent)."""
        return _SIDES[self]


_SIDES = {
    OrphanClass.MISSING_OBJECT: "row",
    OrphanClass.PENDING_STALE: "row",
    OrphanClass.DELETING_LEFTOVER: "row",
    OrphanClass.ORPHAN_OBJECT: "object",
    OrphanClass.FOREIGN_OBJECT: "object",
    OrphanClass.PARTIAL_UPLOAD: "object",
    OrphanClass.OK: "both",
    OrphanClass.SIZE_MISMATCH: "both",
    OrphanClass.SHA_MISMATCH: "both",
    OrphanClass.TOO_RECENT: "either",
}


@frozen(kw_only=True, slots=True)
class RowRef:
    """A row that references an artefact-store object, as read for a scan."""

    key: str
    table: str  # artifacts, caches or job_runs
    row_id: str
    status: str  # artifacts: pending/ready/deleting; caches: pending/ready; job_runs: ready
    size_bytes: int | None = None  # None where gocdnext records none (log archives)
    sha256: str = ""
    #: the row's latest change: created/deleted (artefacts), updated (caches), archived (logs)
    stamped_at: datetime | None = None


class Listed(Protocol):
    """One object of the store's listing (``ports.ObjectInfo`` has this shape)."""

    @property
    def key(self) -> str: ...

    @property
    def size_bytes(self) -> int: ...

    @property
    def modified_at(self) -> datetime | None: ...


@frozen(kw_only=True, slots=True)
class OrphanRow:
    """One classified key (every class but ``ok`` is kept in a report)."""

    key: str
    cls: OrphanClass
    size_bytes: int = 0  # the object's size, else the row's, else 0
    table: str = ""  # for rows: the table and id of the row
    row_id: str = ""
    status: str = ""
    modified_at: datetime | None = None  # the object's write time, where there is one
    stamped_at: datetime | None = None  # the row's, where there is one
    sha256: str = ""  # the row's recorded SHA-256, where there is one
    #: False for a row the store holds no object for (whatever its class)
    has_object: bool = True

    @property
    def recoverable(self) -> bool:
        """A ``ready`` row without its object: writing the object back from a backup that
        holds it under the row's SHA-256 destroys nothing, however recent the row is."""
        return (
            not self.has_object
            and self.status == "ready"
            and self.cls in (OrphanClass.MISSING_OBJECT, OrphanClass.TOO_RECENT)
        )

    @property
    def unjudged_object(self) -> bool:
        """An object in one of gocdnext's layouts, without a row, too recent to be judged an
        orphan yet (a later scan decides)."""
        return (
            self.cls is OrphanClass.TOO_RECENT
            and not self.table
            and (in_layout(self.key) or self.key.endswith(PARTIAL_SUFFIX))
        )


@frozen(kw_only=True)
class ScanRules:
    """How keys are classified: ``now`` and ``grace`` make the too-recent cutoff."""

    now: datetime
    grace: timedelta = field(default=timedelta(hours=6))
    #: ``*.part`` files are interrupted uploads (filesystem backend only)
    partial_uploads: bool = False
    keep_ok: bool = False

    @property
    def cutoff(self) -> datetime:
        return self.now - self.grace

    @property
    def pending_cutoff(self) -> datetime:
        return self.now - max(self.grace, PENDING_TIMEOUT)


class Tally:
    """Counts and bytes per class, and the last key classified (the resume cursor)."""

    def __init__(self) -> None:
        self.counts: dict[OrphanClass, int] = dict.fromkeys(OrphanClass, 0)
        self.bytes: dict[OrphanClass, int] = dict.fromkeys(OrphanClass, 0)
        self.cursor = ""
        #: objects the store listing yielded (0 after a complete scan: the store is empty)
        self.objects = 0

    def add(self, cls: OrphanClass, size: int) -> None:
        self.counts[cls] += 1
        self.bytes[cls] += size

    @property
    def total(self) -> int:
        return sum(self.counts.values())


#: content verification: (row, object) -> does the object's content match the row's SHA-256?
#: None where it was not checked (a sample)
Verify = Callable[[RowRef, Listed], "bool | None"]
#: a fresh look at one key of the store: the object, or None where there is none
Recheck = Callable[[str], "Listed | None"]


def classify(  # noqa: PLR0915 - the hot loop is inlined on purpose (>1M keys/s)
    rows: Iterable[RowRef],
    objects: Iterable[Listed],
    rules: ScanRules,
    tally: Tally,
    *,
    verify: Verify | None = None,
    recheck: Recheck | None = None,
) -> Generator[OrphanRow, None, None]:
    """Merge the two key-sorted streams; every key lands in exactly one class, counted in
    ``tally``; every class but ``ok`` (unless ``rules.keep_ok``) is yielded.  A stream out of
    order raises :class:`OutOfOrder` before anything about the out-of-order key is said.

    The common case (a ready row and its object, both old enough, sizes equal) takes a fast
    path that allocates nothing.

    ``recheck`` looks at the store again for a key the listing does not hold but a row
    references (a listing taken earlier than the rows were read, such as an inventory, cannot
    know of objects written since): an object it finds is judged with its row."""
    cutoff, pending_cutoff = rules.cutoff, rules.pending_cutoff
    partial, keep_ok, add = rules.partial_uploads, rules.keep_ok, tally.add
    ok = OrphanClass.OK
    next_row = _unique_rows(rows).__next__
    next_obj = iter(objects).__next__
    row = _pull(next_row)
    obj = _pull(next_obj)
    last_obj = ""
    ok_count = ok_bytes = 0
    cursor = tally.cursor
    try:
        while row is not None or obj is not None:
            if row is not None and obj is not None:
                okey = obj.key
                if okey <= last_obj:
                    raise OutOfOrder(f"the store listing is not in key order at {okey!r}")
                if row.key == okey:
                    stamped, modified, size = row.stamped_at, obj.modified_at, obj.size_bytes
                    if (
                        row.status == "ready"
                        and stamped is not None
                        and stamped <= cutoff
                        and modified is not None
                        and modified <= cutoff
                        and (row.size_bytes is None or row.size_bytes == size)
                        and (verify is None or not row.sha256)
                        and not keep_ok
                    ):
                        ok_count += 1
                        ok_bytes += size
                        cursor = last_obj = okey
                        row, obj = _pull(next_row), _pull(next_obj)
                        continue
                    out = _both(row, obj, cutoff, pending_cutoff, verify)
                    last_obj = okey
                    row, obj = _pull(next_row), _pull(next_obj)
                elif row.key < okey:
                    out = _alone(row, cutoff, pending_cutoff, recheck, verify)
                    row = _pull(next_row)
                else:
                    out = _object_only(obj, cutoff, partial)
                    last_obj = okey
                    obj = _pull(next_obj)
            elif row is not None:
                out = _alone(row, cutoff, pending_cutoff, recheck, verify)
                row = _pull(next_row)
            else:
                assert obj is not None
                okey = obj.key
                if okey <= last_obj:
                    raise OutOfOrder(f"the store listing is not in key order at {okey!r}")
                out = _object_only(obj, cutoff, partial)
                last_obj = okey
                obj = _pull(next_obj)
            add(out.cls, out.size_bytes)
            cursor = out.key
            if out.cls is not ok or keep_ok:
                tally.cursor = cursor
                yield out
    finally:
        tally.counts[ok] += ok_count
        tally.bytes[ok] += ok_bytes
        tally.cursor = cursor


def _pull(step: Callable[[], _T]) -> _T | None:
    try:
        return step()
    except StopIteration:
        return None


def _unique_rows(rows: Iterable[RowRef]) -> Iterator[RowRef]:
    """One row per key, in order: where several rows share a key (caches' storage_key is not
    UNIQUE), the liveliest (ready, then pending, then deleting) speaks for it."""
    it = iter(rows)
    current = next(it, None)
    if current is None:
        return
    for row in it:
        if row.key == current.key:
            if _LIVELY.get(row.status, 0) > _LIVELY.get(current.status, 0):
                current = row
            continue
        if row.key < current.key:
            raise OutOfOrder(f"the database's keys are not in order at {row.key!r}")
        yield current
        current = row
    yield current


_LIVELY = {"ready": 3, "pending": 2, "deleting": 1}


def _recent(at: datetime | None, cutoff: datetime) -> bool:
    return at is None or at > cutoff


def _alone(
    row: RowRef,
    cutoff: datetime,
    pending_cutoff: datetime,
    recheck: Recheck | None,
    verify: Verify | None,
) -> OrphanRow:
    """A row the listing holds no object for (looked up again with ``recheck``)."""
    found = recheck(row.key) if recheck is not None else None
    if found is None:
        return _row_only(row, cutoff, pending_cutoff)
    return _both(row, found, cutoff, pending_cutoff, verify)


def _row_only(row: RowRef, cutoff: datetime, pending_cutoff: datetime) -> OrphanRow:
    if row.status == "pending":
        cls = (
            OrphanClass.TOO_RECENT
            if _recent(row.stamped_at, pending_cutoff)
            else OrphanClass.PENDING_STALE
        )
    elif _recent(row.stamped_at, cutoff):
        cls = OrphanClass.TOO_RECENT
    elif row.status == "deleting":
        cls = OrphanClass.DELETING_LEFTOVER
    else:
        cls = OrphanClass.MISSING_OBJECT
    return OrphanRow(
        key=row.key,
        cls=cls,
        size_bytes=row.size_bytes or 0,
        table=row.table,
        row_id=row.row_id,
        status=row.status,
        stamped_at=row.stamped_at,
        sha256=row.sha256,
        has_object=False,
    )


def _object_only(obj: Listed, cutoff: datetime, partial: bool) -> OrphanRow:
    key = obj.key
    if _recent(obj.modified_at, cutoff):
        cls = OrphanClass.TOO_RECENT
    elif partial and key.endswith(PARTIAL_SUFFIX):
        cls = OrphanClass.PARTIAL_UPLOAD
    elif in_layout(key):
        cls = OrphanClass.ORPHAN_OBJECT
    else:
        cls = OrphanClass.FOREIGN_OBJECT
    return OrphanRow(key=key, cls=cls, size_bytes=obj.size_bytes, modified_at=obj.modified_at)


def _both(
    row: RowRef,
    obj: Listed,
    cutoff: datetime,
    pending_cutoff: datetime,
    verify: Verify | None,
) -> OrphanRow:
    if row.status == "pending":
        stale = not _recent(row.stamped_at, pending_cutoff) and not _recent(obj.modified_at, cutoff)
        cls = OrphanClass.PENDING_STALE if stale else OrphanClass.TOO_RECENT
    elif _recent(row.stamped_at, cutoff) or _recent(obj.modified_at, cutoff):
        cls = OrphanClass.TOO_RECENT
    elif row.status == "deleting":
        cls = OrphanClass.OK  # gocdnext's sweeper is on it
    elif row.size_bytes is not None and row.size_bytes != obj.size_bytes:
        cls = OrphanClass.SIZE_MISMATCH
    elif verify is not None and row.sha256 and verify(row, obj) is False:
        cls = OrphanClass.SHA_MISMATCH
    else:
        cls = OrphanClass.OK
    if cls is OrphanClass.OK:
        return OrphanRow(key=row.key, cls=cls, size_bytes=obj.size_bytes)
    return OrphanRow(
        key=row.key,
        cls=cls,
        size_bytes=obj.size_bytes,
        table=row.table,
        row_id=row.row_id,
        status=row.status,
        modified_at=obj.modified_at,
        stamped_at=row.stamped_at,
        sha256=row.sha256,
    )
