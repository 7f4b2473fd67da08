"""escrow_key / recover_key: gocdnext's application key kept *separately* from the backups whose
encrypted columns it opens, made safe: an envelope sealed for a passphrase and/or X25519
recipients, written to a store that is not the backup repository (checked, not trusted), and
a paper form to print; and read back from either, the fingerprint checked.

The key goes only into the envelope (sealed) and the paper text (returned to the caller, who
prints it); logs and messages carry the fingerprint and locations, never the key."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from gocdbackup.context import OpContext
from gocdbackup.errors import (
    ConfigError,
    EscrowLocked,
    EscrowMismatch,
    GocdBackupError,
    IntegrityError,
    NotFound,
    StorageError,
    UnsupportedFormat,
)
from gocdbackup.gocdnext.secrets import fingerprint as key_fingerprint
from gocdbackup.model.escrow import (
    MIN_SCRYPT_N,
    Envelope,
    escrow_name,
    open_envelope,
    parse_escrow_name,
    seal_envelope,
)
from gocdbackup.model.escrow_keys import parse_private_key
from gocdbackup.model.escrow_results import EscrowEntry, EscrowResult, RecoveredKey
from gocdbackup.model.locations import overlapping, parse_location
from gocdbackup.model.paper_key import read_paper, render_paper
from gocdbackup.ports import ObjectStore

log = logging.getLogger("gocdbackup.ops.escrow")

ESCROW_PREFIX = "gocdnext-key-"


def check_apart(to_url: str, repo_urls: Sequence[str]) -> None:
    """:class:`ConfigError` if the escrow location ``to_url`` is a backup repository, lies
    inside one or holds one (same scheme and bucket, one prefix inside the other)."""
    for repo in repo_urls:
        if overlapping(to_url, repo):
            raise ConfigError(
                f"to=URL {parse_location(to_url)} is the backup repository "
                f"{parse_location(repo)}, inside it or around it: "
                "the key's escrow must be kept apart from the backups it opens (another "
                "bucket, or a prefix outside the repository's)"
            )


def escrow_key(
    key: bytes,
    store: ObjectStore | None = None,
    *,
    repo_url: str | Sequence[str] | None,
    passphrase: bytes | None = None,
    recipients: Sequence[str] = (),
    paper: bool = False,
    ctx: OpContext | None = None,
    scrypt_n: int = MIN_SCRYPT_N,
) -> EscrowResult:
    """Escrow ``key``: an envelope sealed for ``passphrase`` and/or ``recipients`` (X25519
    public keys, base64 or hex) written into ``store`` under
    ``gocdnext-key-<fingerprint>-<UTC time>.json``, read back and compared; and/or, with
    ``paper=True``, the paper form's text in the result (``result.paper``).

    ``repo_url`` is the backup repository's URL (or several; None: there is none to compare
    with): a ``store`` at, inside or around it is refused before anything is written."""
    ctx = ctx or OpContext()
    if len(key) != 32:
        raise ConfigError("the application key must be 32 bytes")
    if store is None and not paper:
        raise ConfigError("escrow_key needs to=URL (a store for the envelope) or paper=FILE")
    now = ctx.now()
    fp = key_fingerprint(key)
    location = name = None
    if store is not None:
        repos = [repo_url] if isinstance(repo_url, str) else list(repo_url or ())
        check_apart(store.url, repos)
        envelope = seal_envelope(
            key, now=now, passphrase=passphrase, recipients=recipients, scrypt_n=scrypt_n
        )
        ctx.check()
        name = escrow_name(fp, now)
        if store.exists(name):
            raise ConfigError(f"{store.url} already holds {name}: try again in a second")
        data = envelope.to_json()
        store.write(name, data)
        if store.read(name) != data:
            raise StorageError(f"{store.url}: {name} does not read back as written")
        location = f"{store.url.rstrip('/')}/{name}"
        log.info("escrowed key %s to %s", fp, location)
        recipients_text = tuple(r.recipient_text for r in envelope.recipients)
    else:
        recipients_text = ()
    return EscrowResult(
        fingerprint=fp,
        written_at=now,
        location=location,
        name=name,
        passphrase=store is not None and passphrase is not None,
        recipients=recipients_text,
        paper=render_paper(key, now=now) if paper else None,
    )


def list_escrows(store: ObjectStore) -> list[EscrowEntry]:
    """The escrow envelopes at the top of ``store``, newest first (read from their names)."""
    out = []
    for info in store.list(ESCROW_PREFIX):
        parsed = parse_escrow_name(info.key)
        if parsed is not None and "/" not in info.key:
            out.append(
                EscrowEntry(
                    name=info.key,
                    fingerprint=parsed[0],
                    written_at=parsed[1],
                    size_bytes=info.size_bytes,
                )
            )
    out.sort(key=lambda e: (e.written_at, e.name), reverse=True)
    return out


def _candidates(store: ObjectStore, name: str | None, expected: str | None) -> list[str]:
    if name is not None:
        return [name]
    entries = list_escrows(store)
    if not entries:
        raise NotFound(f"no escrow of the application key at {store.url}")
    if expected is not None:
        entries = [e for e in entries if e.fingerprint == expected]
        if not entries:
            raise EscrowMismatch(f"{store.url} holds no escrow of the key {expected}")
    keys = sorted({e.fingerprint for e in entries})
    if len(keys) > 1:
        raise ConfigError(
            f"{store.url} holds escrows of {len(keys)} keys ({', '.join(keys)}): pass "
            "fingerprint=... to choose one"
        )
    return [e.name for e in entries]


def recover_key(
    store: ObjectStore | None = None,
    *,
    name: str | None = None,
    paper: str | None = None,
    passphrase: bytes | None = None,
    private_key: str | None = None,
    fingerprint: str | None = None,
) -> RecoveredKey:
    """The application key back from an escrow: the paper form's text (``paper``), or an
    envelope in ``store`` (``name``, else the escrows there, newest first: those that do not
    open are listed in ``skipped``) opened with ``private_key`` (the text
    :func:`~gocdbackup.model.escrow_keys.generate_recipient` gave) or ``passphrase``.

    ``fingerprint`` is the key expected (:class:`EscrowMismatch` if the escrow holds
    another).  Wrong secrets raise :class:`EscrowLocked`, an altered envelope
    :class:`EscrowDamaged`, a mistyped paper form :class:`PaperFormError` naming its line."""
    expected = fingerprint.strip().lower() if fingerprint else None
    if (store is None) == (paper is None):
        raise ConfigError("recover_key reads one escrow: an envelope's store or paper=TEXT")
    if paper is not None:
        found = read_paper(paper)
        _expect(expected, found.fingerprint, "the paper form")
        return RecoveredKey(
            key=found.key, fingerprint=found.fingerprint, written=found.written, source="paper"
        )
    assert store is not None
    if passphrase is None and private_key is None:
        raise ConfigError("opening an escrow needs a passphrase or a recipient's private key")
    private = parse_private_key(private_key) if private_key is not None else None
    skipped: list[str] = []
    first_error: GocdBackupError | None = None
    for candidate in _candidates(store, name, expected):
        where = f"{store.url.rstrip('/')}/{candidate}"
        try:
            envelope = Envelope.from_json(store.read(candidate))
            _expect(expected, envelope.fingerprint, where)
            key = open_envelope(envelope, passphrase=passphrase, private_key=private)
        except (EscrowLocked, EscrowMismatch, IntegrityError, UnsupportedFormat) as exc:
            first_error = first_error or exc
            skipped.append(f"{candidate}: {exc}")
            continue
        log.info("recovered key %s from %s", envelope.fingerprint, where)
        return RecoveredKey(
            key=key,
            fingerprint=envelope.fingerprint,
            written=envelope.created_at.date(),
            source=where,
            skipped=tuple(skipped),
        )
    assert first_error is not None
    raise first_error


def _expect(expected: str | None, found: str, where: str) -> None:
    if expected is not None and expected != found:
        raise EscrowMismatch(f"{where} holds the key {found}, not the key {expected}")
