"""A bucket inventory in memory: :class:`FrozenListing` is a store's listing taken once (an
:class:`~gocdbackup.ports.ObjectListing`), so scans can be shown what an inventory of
yesterday knows and does not know."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from gocdbackup.ports import ObjectInfo, ObjectStore


class FrozenListing:
    """The objects of ``store`` when it was built (``taken_at``); later writes and deletes
    do not show.  ``reads`` counts :meth:`scan` calls."""

    def __init__(self, store: ObjectStore, taken_at: datetime, url: str = "") -> None:
        self._objects = list(store.scan())
        self._taken_at = taken_at
        self._url = url or f"{store.url}#inventory-{taken_at:%Y%m%dT%H%M%SZ}"
        self.reads = 0

    @property
    def url(self) -> str:
        return self._url

    @property
    def taken_at(self) -> datetime:
        return self._taken_at

    def scan(self, start_after: str = "") -> Iterator[ObjectInfo]:
        self.reads += 1
        return iter([o for o in self._objects if o.key > start_after])
