"""What a listing taken earlier (a bucket inventory) cannot know, looked up ahead of the merge.

A row written after the listing was taken references an object the listing either lacks
(written later) or describes as it was (a cache rewritten since).  :class:`FreshLooks` reads
the database's rows a window ahead of the merge and asks the store about each such row's key
(``HEAD``, several at once), then gives the merge the store's answer instead of the listing's:
the object as it is now, or nothing.  A row the listing lacks although it is older than the
listing (an object lost, or uploaded after its row turned older than the listing) is asked
about when the merge meets it (rare: :meth:`recheck`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from gocdbackup.model.orphans import RowRef
from gocdbackup.ports import ObjectInfo, ObjectStore

#: rows read ahead of the merge (more while an object's key lies further ahead)
WINDOW = 2048
WORKERS = 16
#: rows yielded after one before its look is forgotten (the merge holds one row back)
_LAG = 8


class FreshLooks:
    def __init__(
        self,
        rows: Iterator[RowRef],
        store: ObjectStore,
        taken_at: datetime,
        request: Callable[[], None],
        *,
        workers: int = WORKERS,
        window: int = WINDOW,
    ) -> None:
        self._rows, self._store, self._taken_at = rows, store, taken_at
        self._request = request
        self._window = window
        self._ahead: deque[RowRef] = deque()
        self._looks: dict[str, Future[ObjectInfo | None]] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gocdbackup-head")
        self._read_to = ""
        self._exhausted = False
        #: keys of rows read but not yet held against the listing
        self._unmatched: deque[str] = deque()

    def _read(self) -> bool:
        row = next(self._rows, None)
        if row is None:
            self._exhausted = True
            return False
        self._read_to = row.key
        if row.stamped_at is None or row.stamped_at > self._taken_at:
            self._look(row.key)
        else:
            self._unmatched.append(row.key)
        self._ahead.append(row)
        return True

    def _look(self, key: str) -> None:
        if key not in self._looks:
            self._request()
            self._looks[key] = self._pool.submit(self._store.stat, key)

    def _reach(self, key: str) -> None:
        """Read rows up to ``key`` (the listing's furthest key so far); a row before it that
        the listing skipped has no object there: look it up now, ahead of the merge."""
        while not self._exhausted and self._read_to < key and self._read():
            pass
        unmatched = self._unmatched
        while unmatched and unmatched[0] < key:
            self._look(unmatched.popleft())
        if unmatched and unmatched[0] == key:
            unmatched.popleft()

    def rows(self) -> Iterator[RowRef]:
        """The rows, in order (each one's look, if any, already asked for)."""
        behind: deque[str] = deque()
        while True:
            while not self._exhausted and len(self._ahead) < self._window and self._read():
                pass
            if not self._ahead:
                return
            row = self._ahead.popleft()
            behind.append(row.key)
            if len(behind) > _LAG:  # the merge is past it (it reads a row or two ahead)
                self._looks.pop(behind.popleft(), None)
            yield row

    def objects(self, listed: Iterator[ObjectInfo]) -> Iterator[ObjectInfo]:
        """The listing, with the store's fresh answer for every key a newer row references."""
        window: deque[ObjectInfo] = deque()
        listed = iter(listed)
        while True:
            while len(window) < self._window and (ahead := next(listed, None)) is not None:
                self._reach(ahead.key)
                window.append(ahead)
            if not window:
                return
            obj = window.popleft()
            look = self._looks.get(obj.key)
            if look is None:
                yield obj
                continue
            fresh = look.result()
            if fresh is not None:
                yield fresh  # gone since the listing: left out, as a listing now would

    def recheck(self, key: str) -> ObjectInfo | None:
        """The store's answer for ``key``, a row's the listing does not hold."""
        look = self._looks.get(key)
        if look is not None:
            return look.result()
        self._request()
        return self._store.stat(key)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
