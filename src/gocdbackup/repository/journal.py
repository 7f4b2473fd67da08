"""Journals of artefact copies in progress: ``journal/<backup-id>/<n>.bin``, sealed batches of
index lines.  A backup that is interrupted (a crash, Ctrl-C, kill -9) leaves its journal; the
next backup reuses the objects it lists, so nothing is copied twice.  A committed backup
deletes the journals it consumed."""

from __future__ import annotations

import logging
import threading

from gocdbackup.errors import GocdBackupError
from gocdbackup.repository.repo import Repository

log = logging.getLogger("gocdbackup.repository.journal")

JOURNAL_PREFIX = "journal/"


def _key(backup_id: str, seq: int) -> str:
    return f"{JOURNAL_PREFIX}{backup_id}/{seq:06d}.bin"


class Journal:
    """Thread-safe; lines are flushed in batches of ``every``."""

    def __init__(self, repo: Repository, backup_id: str, *, every: int = 100) -> None:
        self._repo = repo
        self._id = backup_id
        self._every = every
        self._lines: list[bytes] = []
        self._seq = 0
        self._lock = threading.Lock()

    def record(self, line: bytes) -> None:
        with self._lock:
            self._lines.append(line)
            if len(self._lines) >= self._every:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._lines:
            return
        name = f"journal:{self._id}:{self._seq}"
        sealed = self._repo.codec.seal_manifest(name, b"".join(self._lines))
        self._repo.store.write(_key(self._id, self._seq), sealed)
        self._seq += 1
        self._lines = []


def read_journals(repo: Repository) -> tuple[list[str], bytes]:
    """(backup ids, their journal lines) of every journal left by an uncommitted backup."""
    committed = set(repo.backup_ids())
    ids: set[str] = set()
    lines: list[bytes] = []
    for info in repo.store.list(JOURNAL_PREFIX):
        parts = info.key[len(JOURNAL_PREFIX) :].split("/")
        if len(parts) != 2 or not parts[1].endswith(".bin"):
            continue
        backup_id, seq = parts[0], parts[1][: -len(".bin")]
        if backup_id in committed:
            continue
        try:
            lines.append(
                repo.codec.open_manifest(
                    f"journal:{backup_id}:{int(seq)}", repo.store.read(info.key)
                )
            )
        except (GocdBackupError, ValueError) as exc:
            log.warning("ignoring journal %s: %s", info.key, exc)
            continue
        ids.add(backup_id)
    return sorted(ids), b"".join(lines)


def delete_journals(repo: Repository, backup_ids: list[str]) -> None:
    for backup_id in backup_ids:
        for info in repo.store.list(f"{JOURNAL_PREFIX}{backup_id}/"):
            repo.store.delete(info.key)
