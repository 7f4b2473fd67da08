"""Repository leases in ``locks/<id>.json``: shared for backups, restores, copies and pins;
exclusive for garbage collection and retention.

Protocol (the same on every backend): a process writes its own lease under a fresh random
name, then lists ``locks/``.  If a live lease it conflicts with is there (exclusive against
anything), it deletes its own and waits or gives up.  Two processes racing both see each other's
lease and both back off, so at most one exclusive holder, or only shared holders, proceed.  This
needs only atomic whole-object writes and read-after-write listings (local files, S3, GCS), not
conditional writes: lease names never collide.

Leases expire (``ttl``, default 5 minutes) unless their holder renews them; a heartbeat thread
renews every ``ttl / 3``.  So a crashed process never blocks the repository for long, and an
expired lease is ignored by everyone (``unlock --stale`` deletes such files).  Before a backup
commits its manifest it checks that its lease is still its own and live: a holder that was
paused past its expiry cannot commit after a garbage collection ran in between.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal

from attrs import frozen

from gocdbackup.context import Clock
from gocdbackup.errors import GocdBackupError, PreconditionFailed
from gocdbackup.ports import ObjectStore

log = logging.getLogger("gocdbackup.repository.locks")

LOCKS_PREFIX = "locks/"
DEFAULT_TTL = timedelta(minutes=5)

Kind = Literal["shared", "exclusive"]


class RepositoryLocked(PreconditionFailed):
    """Another process holds a conflicting lease."""

    code = "repository_locked"


class LockLost(PreconditionFailed):
    """This process's lease expired or was removed while it worked."""

    code = "lock_lost"


@frozen(kw_only=True)
class Lease:
    id: str
    kind: Kind
    operation: str
    host: str
    pid: int
    created_at: datetime
    expires_at: datetime

    def live(self, now: datetime) -> bool:
        return now < self.expires_at

    def conflicts_with(self, other: Lease) -> bool:
        return self.id != other.id and "exclusive" in (self.kind, other.kind)

    def describe(self) -> str:
        return (
            f"{self.kind} lock {self.id} for {self.operation} by pid {self.pid} on {self.host}, "
            f"until {self.expires_at:%Y-%m-%d %H:%M:%S}Z"
        )

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "id": self.id,
                "kind": self.kind,
                "operation": self.operation,
                "host": self.host,
                "pid": self.pid,
                "created_at": self.created_at.isoformat(),
                "expires_at": self.expires_at.isoformat(),
            }
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Lease:
        d: dict[str, Any] = json.loads(raw)
        kind = d["kind"]
        if kind not in ("shared", "exclusive"):
            raise ValueError(f"unknown lock kind {kind!r}")
        return cls(
            id=str(d["id"]),
            kind=kind,
            operation=str(d["operation"]),
            host=str(d["host"]),
            pid=int(d["pid"]),
            created_at=datetime.fromisoformat(d["created_at"]),
            expires_at=datetime.fromisoformat(d["expires_at"]),
        )


def lease_key(lease_id: str) -> str:
    return f"{LOCKS_PREFIX}{lease_id}.json"


def read_leases(store: ObjectStore) -> Iterator[tuple[str, Lease | None]]:
    """Every lease file: (key, lease), or (key, None) where the file is unreadable."""
    for info in store.list(LOCKS_PREFIX):
        try:
            yield info.key, Lease.from_json(store.read(info.key))
        except GocdBackupError:
            continue  # deleted since the listing
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring the unreadable lock file %s", info.key)
            yield info.key, None


def remove_stale(store: ObjectStore, now: datetime) -> list[str]:
    """Delete expired and unreadable lease files; the keys removed."""
    removed = []
    for key, lease in read_leases(store):
        if lease is None or not lease.live(now):
            store.delete(key)
            removed.append(key)
    return removed


class RepositoryLock:
    """A lease held for the duration of a ``with`` block, renewed in the background."""

    def __init__(
        self,
        store: ObjectStore,
        kind: Kind,
        operation: str,
        clock: Clock,
        *,
        ttl: timedelta = DEFAULT_TTL,
        wait: timedelta = timedelta(0),
    ) -> None:
        self._store = store
        self._kind: Kind = kind
        self._operation = operation
        self._clock = clock
        self._ttl = ttl
        self._wait = wait
        self._lease: Lease | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._renew_failed: BaseException | None = None

    def __repr__(self) -> str:
        return f"<RepositoryLock {self._kind} {self._operation}>"

    def _new_lease(self) -> Lease:
        now = self._clock.now()
        return Lease(
            id=os.urandom(8).hex(),
            kind=self._kind,
            operation=self._operation,
            host=socket.gethostname(),
            pid=os.getpid(),
            created_at=now,
            expires_at=now + self._ttl,
        )

    def acquire(self) -> Lease:
        deadline = time.monotonic() + self._wait.total_seconds()
        delay = 0.05
        while True:
            lease = self._new_lease()
            self._store.write(lease_key(lease.id), lease.to_json())
            now = self._clock.now()
            blocking = [
                other
                for _, other in read_leases(self._store)
                if other is not None and other.live(now) and lease.conflicts_with(other)
            ]
            if not blocking:
                self._lease = lease
                self._start_heartbeat()
                log.debug("acquired %s", lease.describe())
                return lease
            self._store.delete(lease_key(lease.id))
            if time.monotonic() >= deadline:
                raise RepositoryLocked(
                    f"the repository is locked: {blocking[0].describe()}; try again later, or "
                    "remove expired locks with unlock_stale()"
                )
            time.sleep(delay * (0.5 + os.urandom(1)[0] / 255))  # jitter breaks ties
            delay = min(delay * 2, 2.0)

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._heartbeat = threading.Thread(
            target=self._renew_loop, name="gocdbackup-lock", daemon=True
        )
        self._heartbeat.start()

    def _renew_loop(self) -> None:
        interval = max(self._ttl.total_seconds() / 3, 0.01)
        while not self._stop.wait(interval):
            try:
                self.renew()
            except Exception as exc:
                self._renew_failed = exc
                return

    def renew(self) -> None:
        lease = self._lease
        if lease is None:
            return
        lease = Lease(
            id=lease.id,
            kind=lease.kind,
            operation=lease.operation,
            host=lease.host,
            pid=lease.pid,
            created_at=lease.created_at,
            expires_at=self._clock.now() + self._ttl,
        )
        self._store.write(lease_key(lease.id), lease.to_json())
        self._lease = lease

    def check(self) -> None:
        """Raise :class:`LockLost` unless this lease is still stored, ours and live."""
        lease = self._lease
        if lease is None:
            raise LockLost("the repository lock is not held")
        try:
            stored = Lease.from_json(self._store.read(lease_key(lease.id)))
        except (GocdBackupError, ValueError, KeyError, TypeError):
            stored = None
        if stored is None or not stored.live(self._clock.now()) or self._renew_failed:
            raise LockLost(
                f"lost the repository lock {lease.id} (expired or removed); nothing was committed"
            )

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        if self._lease is not None:
            try:
                self._store.delete(lease_key(self._lease.id))
            except GocdBackupError as exc:
                log.warning("could not remove lock %s: %s", self._lease.id, exc)
            self._lease = None

    def __enter__(self) -> RepositoryLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
