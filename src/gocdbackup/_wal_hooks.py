"""What PostgreSQL runs once per WAL segment (``archive_command``: ``gocdbackup wal push %p``,
``restore_command``: ``gocdbackup wal fetch %f %p``), kept light: the repository, the WAL
records and the store, nothing of PostgreSQL's, Kubernetes' or the facade's machinery, so
that a process per segment starts fast."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gocdbackup.context import OpContext
from gocdbackup.credentials import resolve_password
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.errors import ConfigError
from gocdbackup.ops import wal
from gocdbackup.repository import Repository


def open_repository(
    url: str,
    *,
    password: str | bytes | None = None,
    password_file: str | Path | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Repository:
    """The repository at ``url``, opened with the passphrase (given, from the file, or
    ``$GOCDBACKUP_PASSWORD``)."""
    return Repository.open(
        FsspecStore(url, storage_options), resolve_password(password, password_file)
    )


def push_file(repo: Repository, path: str, *, ctx: OpContext, name: str | None = None) -> bool:
    """Archive the WAL file at ``path`` (as ``name``, default: its file name); True if stored
    now, False if it was archived already with the same content
    (:class:`~gocdbackup.errors.WalConflict` if with other content)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the WAL file {path!r}: {exc.strerror}") from exc
    return wal.push_wal(repo, name or os.path.basename(path), data, ctx=ctx)


def fetch_file(repo: Repository, name: str, dest: str, *, ctx: OpContext) -> int:
    """Write archived WAL file ``name`` to ``dest``; its size
    (:class:`~gocdbackup.errors.WalMissing` if it is not archived)."""
    return wal.fetch_wal(repo, name, dest, ctx=ctx)
