"""The key-slot methods of :class:`~gocdbackup.GocdBackup` (a repository's data key wrapped
once per passphrase): list, add, remove, change the one in use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gocdbackup.context import Clock
from gocdbackup.credentials import NEW_PASSWORD_ENV, resolve_password
from gocdbackup.repository import Repository, keyring


class KeySlots:
    _password: bytes
    _clock: Clock

    if TYPE_CHECKING:

        @property
        def repository(self) -> Repository: ...

    def list_keys(self) -> list[dict[str, Any]]:
        """The key slots (never their contents); ``in_use`` marks the one that opened it."""
        repo = self.repository
        return [
            {
                "id": s.id,
                "label": s.label,
                "created_at": s.created_at.isoformat(),
                "in_use": s.id == repo.slot_id,
            }
            for s in keyring.list_keys(repo)
        ]

    def add_key(
        self,
        *,
        password: str | bytes | None = None,
        password_file: str | Path | None = None,
        label: str = "",
    ) -> str:
        """Add a key slot for another passphrase; its id."""
        new = resolve_password(password, password_file, env=NEW_PASSWORD_ENV)
        slot = keyring.add_key(self.repository, new, label=label, now=self._clock.now())
        return slot.id

    def remove_key(self, key_id: str) -> None:
        keyring.remove_key(self.repository, key_id)

    def change_password(
        self, *, password: str | bytes | None = None, password_file: str | Path | None = None
    ) -> str:
        """Replace the passphrase this repository was opened with; the new key's id."""
        new = resolve_password(password, password_file, env=NEW_PASSWORD_ENV)
        slot = keyring.change_passphrase(self.repository, new, now=self._clock.now())
        self._password = new
        return slot.id
