"""Repository leases: shared/exclusive, expiry, heartbeat, and backups that lose their lease."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from gocdbackup.context import OpContext, SystemClock
from gocdbackup.model import ProgressEvent
from gocdbackup.ops import take_backup
from gocdbackup.repository import Repository
from gocdbackup.repository.locks import (
    LOCKS_PREFIX,
    LockLost,
    RepositoryLock,
    RepositoryLocked,
    remove_stale,
)
from gocdbackup.testing import FakeClock, FakePostgres, MemoryStore, RecordingProgress


def lock(store: MemoryStore, kind: str, clock: object, **kw: object) -> RepositoryLock:
    return RepositoryLock(store, kind, f"test-{kind}", clock, **kw)  # type: ignore[arg-type]


def test_shared_leases_coexist(store: MemoryStore, clock: FakeClock) -> None:
    with lock(store, "shared", clock), lock(store, "shared", clock):
        assert len(list(store.list(LOCKS_PREFIX))) == 2
    assert list(store.list(LOCKS_PREFIX)) == []


@pytest.mark.parametrize(
    ("held", "wanted"),
    [("exclusive", "shared"), ("shared", "exclusive"), ("exclusive", "exclusive")],
)
def test_exclusive_conflicts(store: MemoryStore, clock: FakeClock, held: str, wanted: str) -> None:
    with lock(store, held, clock):
        with pytest.raises(RepositoryLocked, match=f"{held} lock .* for test-{held} by pid"):
            lock(store, wanted, clock).acquire()
        assert len(list(store.list(LOCKS_PREFIX))) == 1  # the loser left nothing behind


def test_expired_leases_are_ignored_and_removable(store: MemoryStore, clock: FakeClock) -> None:
    crashed = lock(store, "exclusive", clock, ttl=timedelta(minutes=5))
    crashed.acquire()
    crashed._stop.set()  # the holder "crashes": no heartbeat, no release
    clock.advance(timedelta(minutes=6))
    with lock(store, "exclusive", clock):
        pass
    store.write(f"{LOCKS_PREFIX}garbage.json", b"{not json")
    live = lock(store, "shared", clock)
    live.acquire()
    removed = remove_stale(store, clock.now())
    assert len(removed) == 2  # the expired lease and the unreadable file, not the live one
    assert [i.key for i in store.list(LOCKS_PREFIX)] == [f"{LOCKS_PREFIX}{live._lease.id}.json"]  # type: ignore[union-attr]
    live.release()


def test_waiting_for_a_lease(store: MemoryStore) -> None:
    clock = SystemClock()
    holder = lock(store, "exclusive", clock)
    holder.acquire()
    threading.Timer(0.3, holder.release).start()
    with lock(store, "shared", clock, wait=timedelta(seconds=10)) as waiter:
        waiter.check()


def test_heartbeat_keeps_a_lease_alive(store: MemoryStore) -> None:
    with lock(store, "shared", SystemClock(), ttl=timedelta(seconds=0.3)) as held:
        time.sleep(0.8)  # well past the first expiry: renewed every 0.1 s
        held.check()


def test_a_lost_lease_is_detected(store: MemoryStore, clock: FakeClock) -> None:
    with lock(store, "shared", clock) as held:
        for info in list(store.list(LOCKS_PREFIX)):
            store.delete(info.key)
        with pytest.raises(LockLost, match="nothing was committed"):
            held.check()
    held2 = lock(store, "shared", clock, ttl=timedelta(minutes=1))
    held2.acquire()
    clock.advance(timedelta(minutes=2))
    with pytest.raises(LockLost):
        held2.check()
    held2.release()


def test_backup_that_loses_its_lease_commits_nothing(
    repo: Repository, store: MemoryStore, db: FakePostgres, clock: FakeClock
) -> None:
    def steal(event: ProgressEvent) -> None:
        if event.phase == "dump" and event.done > 0:
            for info in list(store.list(LOCKS_PREFIX)):
                store.delete(info.key)  # e.g. an operator ran 'unlock' on a live lease

    ctx = OpContext(progress=RecordingProgress(steal), clock=clock)
    with pytest.raises(LockLost):
        take_backup(repo, db, ctx=ctx)
    assert repo.backup_ids() == []


def test_backup_waits_for_nobody_but_refuses_during_exclusive(
    repo: Repository, store: MemoryStore, db: FakePostgres, ctx: OpContext, clock: FakeClock
) -> None:
    with lock(store, "exclusive", clock), pytest.raises(RepositoryLocked):
        take_backup(repo, db, ctx=ctx)
    assert take_backup(repo, db, ctx=ctx).id in repo.backup_ids()
    assert list(store.list(LOCKS_PREFIX)) == []


def test_racing_exclusive_lockers_never_both_win(store: MemoryStore) -> None:
    clock = SystemClock()
    inside = 0
    worst = 0
    guard = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        nonlocal inside, worst
        for _ in range(15):
            try:
                with lock(store, "exclusive", clock, wait=timedelta(seconds=20)):
                    with guard:
                        inside += 1
                        worst = max(worst, inside)
                    time.sleep(0.002)
                    with guard:
                        inside -= 1
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert worst == 1
    assert list(store.list(LOCKS_PREFIX)) == []
