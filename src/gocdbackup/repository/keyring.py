"""Key slots of an opened repository: list, add, remove, change a passphrase.

Every change rewraps the master keys and rewrites ``config.json``; data is never re-encrypted.
"""

from __future__ import annotations

import logging
from datetime import datetime

import attrs

from gocdbackup.errors import ConfigError, NotFound, PreconditionFailed
from gocdbackup.repository.keys import KeySlot, unwrap_keys, wrap_keys
from gocdbackup.repository.repo import Repository

log = logging.getLogger("gocdbackup.repository.keys")


def list_keys(repo: Repository) -> tuple[KeySlot, ...]:
    return repo.config.key_slots


def add_key(repo: Repository, passphrase: bytes, *, label: str, now: datetime) -> KeySlot:
    """A new slot that opens the repository with ``passphrase``."""
    for slot in repo.config.key_slots:
        if unwrap_keys(slot, passphrase) is not None:
            raise ConfigError(f"that passphrase already opens this repository (key {slot.id})")
    first = repo.config.key_slots[0]
    slot = wrap_keys(
        repo.master_keys, passphrase, label=label, created_at=now, n=first.n, r=first.r, p=first.p
    )
    repo.write_config(attrs.evolve(repo.config, key_slots=(*repo.config.key_slots, slot)))
    log.info("added key %s (%s)", slot.id, label)
    return slot


def remove_key(repo: Repository, slot_id: str) -> None:
    """Remove a slot. The last slot, and the slot in use, cannot be removed."""
    slots = repo.config.key_slots
    if slot_id not in {s.id for s in slots}:
        raise NotFound(f"no key {slot_id!r} in this repository")
    if len(slots) == 1:
        raise PreconditionFailed("refusing to remove the last key: the repository would be lost")
    if slot_id == repo.slot_id:
        raise PreconditionFailed(
            f"key {slot_id} is the one in use; open the repository with another key to remove it"
        )
    repo.write_config(
        attrs.evolve(repo.config, key_slots=tuple(s for s in slots if s.id != slot_id))
    )
    log.info("removed key %s", slot_id)


def change_passphrase(repo: Repository, passphrase: bytes, *, now: datetime) -> KeySlot:
    """Replace the slot in use by one for ``passphrase`` (same label), in one config write."""
    current = next(s for s in repo.config.key_slots if s.id == repo.slot_id)
    if unwrap_keys(current, passphrase) is not None:
        raise ConfigError("the new passphrase is the same as the current one")
    slot = wrap_keys(
        repo.master_keys,
        passphrase,
        label=current.label,
        created_at=now,
        n=current.n,
        r=current.r,
        p=current.p,
    )
    kept = tuple(s for s in repo.config.key_slots if s.id != current.id)
    repo.write_config(attrs.evolve(repo.config, key_slots=(*kept, slot)))
    repo.slot_id = slot.id
    log.info("changed the passphrase of key %s (now key %s)", current.id, slot.id)
    return slot
