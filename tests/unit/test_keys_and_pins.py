"""Key slots (several passphrases, one repository) and pins."""

from __future__ import annotations

import pytest

from gocdbackup.context import OpContext
from gocdbackup.errors import (
    BackupNotFound,
    ConfigError,
    NotFound,
    PreconditionFailed,
    WrongPassword,
)
from gocdbackup.ops import get_backup, pin_backup, take_backup, unpin_backup
from gocdbackup.repository import Repository, keyring
from gocdbackup.repository.repo import CONFIG_KEY
from gocdbackup.testing import FakeClock, FakePostgres, MemoryStore

from .conftest import PASS

BREAK_GLASS = b"break glass, 2026"


def test_added_key_opens_the_same_data(
    repo: Repository, store: MemoryStore, db: FakePostgres, ctx: OpContext, clock: FakeClock
) -> None:
    backup = take_backup(repo, db, ctx=ctx)
    blobs_before = {k: v for k, v in store.objects.items() if k.startswith("data/")}
    slot = keyring.add_key(repo, BREAK_GLASS, label="break-glass", now=clock.now())
    other = Repository.open(store, BREAK_GLASS)
    assert other.slot_id == slot.id
    assert get_backup(other, backup.id) == backup
    # rewrapping only: no blob was rewritten
    assert {k: v for k, v in store.objects.items() if k.startswith("data/")} == blobs_before
    assert [s.label for s in keyring.list_keys(other)] == ["initial", "break-glass"]


def test_adding_a_passphrase_twice_is_refused(repo: Repository, clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="already opens"):
        keyring.add_key(repo, PASS, label="again", now=clock.now())
    with pytest.raises(ConfigError, match="must not be empty"):
        keyring.add_key(repo, b"", label="empty", now=clock.now())
    assert len(keyring.list_keys(repo)) == 1


def test_the_last_key_and_the_key_in_use_cannot_be_removed(
    repo: Repository, store: MemoryStore, clock: FakeClock
) -> None:
    with pytest.raises(PreconditionFailed, match="last key"):
        keyring.remove_key(repo, repo.slot_id)
    slot = keyring.add_key(repo, BREAK_GLASS, label="bg", now=clock.now())
    with pytest.raises(PreconditionFailed, match="in use"):
        keyring.remove_key(repo, repo.slot_id)
    with pytest.raises(NotFound):
        keyring.remove_key(repo, "nope")
    keyring.remove_key(Repository.open(store, BREAK_GLASS), repo.slot_id)
    with pytest.raises(WrongPassword):
        Repository.open(store, PASS)
    assert Repository.open(store, BREAK_GLASS).slot_id == slot.id


def test_change_passphrase(repo: Repository, store: MemoryStore, clock: FakeClock) -> None:
    before = store.read(CONFIG_KEY)
    with pytest.raises(ConfigError, match="same as the current"):
        keyring.change_passphrase(repo, PASS, now=clock.now())
    assert store.read(CONFIG_KEY) == before
    keyring.change_passphrase(repo, b"new one", now=clock.now())
    with pytest.raises(WrongPassword):
        Repository.open(store, PASS)
    reopened = Repository.open(store, b"new one")
    assert [s.label for s in keyring.list_keys(reopened)] == ["initial"]
    assert BREAK_GLASS not in store.read(CONFIG_KEY)


def test_pin_and_unpin(repo: Repository, db: FakePostgres, ctx: OpContext) -> None:
    backup = take_backup(repo, db, ctx=ctx)
    pinned = pin_backup(repo, backup.id, reason="  legal hold ", ctx=ctx)
    assert pinned.pin == "legal hold"
    assert get_backup(repo, backup.id).pin == "legal hold"
    assert unpin_backup(repo, backup.id, ctx=ctx).pin is None
    assert get_backup(repo, backup.id) == backup
    assert unpin_backup(repo, backup.id, ctx=ctx) == backup  # unpinning twice is harmless


def test_pin_needs_a_reason_and_a_backup(
    repo: Repository, db: FakePostgres, ctx: OpContext
) -> None:
    backup = take_backup(repo, db, ctx=ctx)
    with pytest.raises(ConfigError, match="needs a reason"):
        pin_backup(repo, backup.id, reason=" ", ctx=ctx)
    with pytest.raises(BackupNotFound):
        pin_backup(repo, "20990101T000000Z-000000", reason="x", ctx=ctx)
