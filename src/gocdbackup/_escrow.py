"""The application key's escrow, wired for callers: the key read from a file or the
environment, stores opened from URLs (:class:`~gocdbackup.drivers.fsspec_store.FsspecStore`),
and the local files escrow takes and gives (the paper form, a recovered key, a recipient's
private key), each written with mode 0600 and never over an existing file unless
``replace=True``.  See docs/secrets.md ("Escrow")."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from gocdbackup.context import Clock, OpContext, SystemClock
from gocdbackup.credentials import application_key, read_secret_file
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.errors import ConfigError
from gocdbackup.model.escrow import parse_escrow_name
from gocdbackup.model.escrow_keys import generate_recipient
from gocdbackup.model.escrow_results import EscrowEntry, EscrowResult, RecoveredKey
from gocdbackup.ops import escrow as ops
from gocdbackup.ports import ObjectStore

#: where the escrow passphrase is read from when neither a value nor a file is given
ESCROW_PASSPHRASE_ENV = "GOCDBACKUP_ESCROW_PASSPHRASE"  # noqa: S105 - a variable's name

PathLike = str | Path


def escrow_key(
    *,
    repo_url: str | Sequence[str] | None,
    to: str | ObjectStore | None = None,
    paper: PathLike | bool | None = None,
    recipients: Sequence[str] = (),
    passphrase: str | bytes | None = None,
    passphrase_file: PathLike | None = None,
    secret_key_file: PathLike | None = None,
    secret_key: str | None = None,
    storage_options: dict[str, Any] | None = None,
    replace: bool = False,
    clock: Clock | None = None,
) -> EscrowResult:
    """Escrow gocdnext's key (from ``secret_key_file``, else ``secret_key``, else
    ``$GOCDNEXT_SECRET_KEY``): an envelope written to the store ``to=URL`` sealed for the
    passphrase (``passphrase``, ``passphrase_file`` or ``$GOCDBACKUP_ESCROW_PASSPHRASE``)
    and/or ``recipients`` (X25519 public keys), and/or the paper form written to the file
    ``paper`` (``paper=True``: only returned, as ``result.paper``).

    ``repo_url`` (required; None if there is no repository) is the backup repository: an
    escrow at, inside or around it is refused."""
    key = _key(secret_key_file, secret_key)
    paper_path = None if paper is None or isinstance(paper, bool) else Path(paper)
    if paper_path is not None and paper_path.exists() and not replace:
        raise ConfigError(f"{paper_path} exists: choose another paper=FILE or pass replace=True")
    store = _store(to, storage_options) if to is not None else None
    repos = [repo_url] if isinstance(repo_url, str) else list(repo_url or ())
    result = ops.escrow_key(
        key,
        store,
        repo_url=[_resolved(r) for r in repos],
        passphrase=_passphrase(passphrase, passphrase_file),
        recipients=recipients,
        paper=bool(paper) or paper_path is not None,
        ctx=OpContext(clock=clock or SystemClock()),
    )
    if paper_path is not None and result.paper is not None:
        write_private(paper_path, result.paper, replace=replace)
        result = attrs.evolve(result, paper_file=str(paper_path))
    return result


def recover_key(
    *,
    source: str | ObjectStore | None = None,
    paper: PathLike | None = None,
    passphrase: str | bytes | None = None,
    passphrase_file: PathLike | None = None,
    private_key: str | None = None,
    private_key_file: PathLike | None = None,
    fingerprint: str | None = None,
    out: PathLike | None = None,
    replace: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> RecoveredKey:
    """gocdnext's key back from an escrow: the envelope at ``source`` (a store URL: its
    newest escrow, or the URL of one escrow object) opened with ``private_key`` /
    ``private_key_file`` or the passphrase, or the retyped paper form in the file ``paper``.
    ``fingerprint``: the key expected.  With ``out``, the key is written there as 64 hex
    characters and a newline (mode 0600), ready for ``GOCDNEXT_SECRET_KEY``."""
    if out is not None and Path(out).exists() and not replace:
        raise ConfigError(f"{out} exists: choose another out=FILE or pass replace=True")
    if paper is not None:
        if source is not None:
            raise ConfigError("recover_key reads one escrow: source=URL or paper=FILE")
        found = ops.recover_key(paper=_read_text(paper, "paper form"), fingerprint=fingerprint)
    else:
        if source is None:
            raise ConfigError("recover_key needs source=URL (an escrow's store) or paper=FILE")
        if private_key is None and private_key_file is not None:
            private_key = _read_text(private_key_file, "private key file")
        secret = _passphrase(passphrase, passphrase_file)
        store, name = _escrow_store(source, storage_options)
        found = ops.recover_key(
            store,
            name=name,
            passphrase=secret,
            private_key=private_key,
            fingerprint=fingerprint,
        )
    if out is not None:
        write_private(Path(out), found.key_text() + "\n", replace=replace)
    return found


def list_escrows(
    source: str | ObjectStore, storage_options: dict[str, Any] | None = None
) -> list[EscrowEntry]:
    """The escrows in the store ``source``, newest first."""
    return ops.list_escrows(_store(source, storage_options))


def save_recipient(private_file: PathLike, *, replace: bool = False) -> str:
    """A new escrow recipient: its private key written to ``private_file`` (mode 0600; keep it
    offline), its public key returned (give it to ``recipients=``)."""
    private, public = generate_recipient()
    write_private(Path(private_file), private + "\n", replace=replace)
    return public


# -- helpers ------------------------------------------------------------------------------------


def write_private(path: Path, text: str, *, replace: bool = False) -> None:
    """``text`` into ``path``, readable by its owner only; an existing file only if
    ``replace``."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists: choose another file or pass replace=True") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        if hasattr(os, "fchmod"):
            os.fchmod(f.fileno(), 0o600)  # a replaced file keeps no wider mode
        f.write(text)


def _key(secret_key_file: PathLike | None, secret_key: str | None) -> bytes:
    file = str(secret_key_file) if secret_key_file is not None else None
    return application_key(env=secret_key, file=file)


def _read_text(path: PathLike, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def _passphrase(value: str | bytes | None, file: PathLike | None) -> bytes | None:
    """The explicit value, else the file's content (one trailing newline dropped), else
    ``$GOCDBACKUP_ESCROW_PASSPHRASE``; None if none is given."""
    if value is not None:
        return value.encode() if isinstance(value, str) else value
    if file is not None:
        data = read_secret_file(file, "passphrase file")
        if not data:
            raise ConfigError(f"the passphrase file {file} is empty")
        return data
    env = os.environ.get(ESCROW_PASSPHRASE_ENV, "")
    return env.encode() if env else None


def _resolved(url: str) -> str:
    """A local path or ``file://`` URL made absolute with symlinks followed (so two spellings
    of one directory compare equal); any other URL unchanged."""
    parts = urlsplit(url)
    if len(parts.scheme) > 1 and parts.scheme.lower() not in ("file", "local"):
        return url
    path = parts.path if len(parts.scheme) > 1 else url
    if parts.netloc and parts.netloc.lower() != "localhost" and len(parts.scheme) > 1:
        path = parts.netloc + parts.path  # file://relative/dir
    return "file://" + os.path.realpath(os.path.expanduser(path))


def _store(value: str | ObjectStore, options: dict[str, Any] | None) -> ObjectStore:
    if not isinstance(value, str):
        return value
    return FsspecStore(_resolved(value), options)


def _escrow_store(
    source: str | ObjectStore, options: dict[str, Any] | None
) -> tuple[ObjectStore, str | None]:
    """The store and, when ``source`` is the URL of one escrow object, its name."""
    if isinstance(source, str):
        head, _, last = source.rstrip("/").rpartition("/")
        if parse_escrow_name(last) is not None:
            return _store(head or ".", options), last
    return _store(source, options), None
