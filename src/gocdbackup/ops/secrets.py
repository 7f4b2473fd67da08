"""gocdnext's application key against its database: a decrypt check of every encrypted column,
a sampled check for backups, and online rotation from one key to another (batches, each its
own transaction; idempotent, so a crash is finished by running it again)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence

from attrs import frozen

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError, ConfirmationMismatch, KeyMismatch
from gocdbackup.gocdnext.cipher import opener, sealer, trial
from gocdbackup.gocdnext.secrets import ENCRYPTED_COLUMNS, EncryptedColumn, fingerprint
from gocdbackup.model.backup import BackupSet, KeyCheck
from gocdbackup.model.rotation import RotationReport
from gocdbackup.model.secrets import (
    MAX_FAILING_IDS,
    CheckTally,
    Reseal,
    SealedValue,
    SecretsCheck,
    values_of,
    where_of,
)
from gocdbackup.ports import GocdnextData

log = logging.getLogger("gocdbackup.ops.secrets")

#: values per progress report and cancellation check
_EVERY = 2000
#: values a backup's sampled check tries per encrypted column
SAMPLE_PER_COLUMN = 20
#: values re-sealed per transaction
DEFAULT_BATCH = 500


@frozen(kw_only=True)
class _Columns:
    present: tuple[EncryptedColumn, ...]
    absent: tuple[str, ...]


def _columns(data: GocdnextData, columns: Sequence[EncryptedColumn]) -> _Columns:
    here = set(data.encrypted_columns_present(columns))
    return _Columns(
        present=tuple(c for c in columns if c.name in here),
        absent=tuple(c.name for c in columns if c.name not in here),
    )


def _holds_nothing(value: SealedValue) -> bool:
    return not value.blob  # NULL, an external secret, or an empty value


def check_secrets(
    data: GocdnextData,
    key: bytes,
    *,
    ctx: OpContext,
    columns: Sequence[EncryptedColumn] = ENCRYPTED_COLUMNS,
) -> SecretsCheck:
    """Trial-decrypt every value of every encrypted column with ``key``: per column, how many
    open, fail or hold nothing, the rows that fail (never a value), and whether it looks like
    the wrong key.  Streams the values: memory stays bounded."""
    found = _columns(data, columns)
    try_all = trial(key)
    counts = CheckTally.of(c.name for c in columns)
    unnamed: dict[str, list[bytes]] = {}  # failing blobs read without their row keys
    seen = 0
    for batch in data.sealed_batches(found.present, keys=False):
        ctx.check()
        ctx.report("secrets-check", seen, None, unit="values")
        opened, empty, failing = try_all(batch.blobs)
        seen += len(batch)
        if batch.row_keys:
            named = [batch.where(i) for i in failing]
            counts.add(batch.column, ok=opened, empty=empty, failing=named)
            continue
        counts.add(batch.column, ok=opened, failed=len(failing), empty=empty)
        kept = unnamed.setdefault(batch.column, [])
        kept.extend(b for i in failing[: MAX_FAILING_IDS - len(kept)] if (b := batch.blobs[i]))
    for column in (c for c in found.present if unnamed.get(c.name)):
        rows = data.rows_holding(column, unnamed[column.name])
        named = sorted(where_of(column.name, k) for keys in rows.values() for k in keys)
        counts.add(column.name, failed=0, failing=named)
    check = counts.result(fingerprint=fingerprint(key), absent=found.absent)
    ctx.report("secrets-check", seen, seen, unit="values")
    log.info("secrets check: %s", check.verdict())
    return check


def sample_key_check(
    data: GocdnextData, key: bytes, *, per_column: int = SAMPLE_PER_COLUMN
) -> KeyCheck:
    """What a backup records: the key's fingerprint and how many of a sample of sealed values
    (the first few of each column) open with it."""
    found = _columns(data, ENCRYPTED_COLUMNS)
    opens = opener(key)
    checked = opened = 0
    for column in found.present:
        batches = data.sealed_batches([column])
        values = (v for v in values_of(batches) if not _holds_nothing(v))
        try:
            for value in itertools.islice(values, per_column):
                checked += 1
                opened += opens(value.blob or b"") is not None
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
    return KeyCheck(fingerprint=fingerprint(key), checked=checked, opened=opened)


def check_backup_key(backup: BackupSet, key: bytes) -> None:
    """Refuse ``key`` for ``backup`` when the backup recorded another key's fingerprint (a
    backup taken without a key proves nothing either way)."""
    taken = backup.key_check
    given = fingerprint(key)
    if taken is not None and taken.fingerprint != given:
        raise KeyMismatch(
            f"backup {backup.id} was taken with key {taken.fingerprint}; the key you gave is "
            f"{given}: its sealed values will not open with it. Give the key the backup was "
            "taken with (or no key, to restore without the check); nothing was touched"
        )


def backups_sealed_with(backups: Iterable[BackupSet], fp: str) -> list[str]:
    """The ids of ``backups`` taken with the key whose fingerprint is ``fp`` (after a rotation:
    the backups that still need the old key until they expire)."""
    return [b.id for b in backups if b.key_check is not None and b.key_check.fingerprint == fp]


def rotate_key(
    data: GocdnextData,
    old: bytes,
    new: bytes,
    *,
    ctx: OpContext,
    dry_run: bool = True,
    confirm: str | None = None,
    batch: int = DEFAULT_BATCH,
    columns: Sequence[EncryptedColumn] = ENCRYPTED_COLUMNS,
) -> RotationReport:
    """Re-seal every value of every encrypted column from ``old`` to ``new``.

    A value that already opens with ``new`` is skipped (so a rotation that stopped half-way
    is finished by running it again); one that opens with neither key is reported and left
    untouched.  Each batch of ``batch`` values is its own transaction, replacing a value only
    if it still holds what was read.  ``dry_run`` (the default) changes nothing; otherwise
    ``confirm`` must repeat the new key's fingerprint.  Ends with a full check under ``new``."""
    if old == new:
        raise ConfigError("the new key is the old key: nothing to rotate")
    if batch < 1:
        raise ConfigError("batch must be at least 1")
    new_fp = fingerprint(new)
    if not dry_run and confirm != new_fp:
        raise ConfirmationMismatch(
            f"confirm must repeat the new key's fingerprint {new_fp}; nothing was changed"
        )
    found = _columns(data, columns)
    open_old, open_new, seal_new = opener(old), opener(new), sealer(new)
    counts = {"resealed": 0, "to_reseal": 0, "already": 0, "neither": 0, "empty": 0}
    neither: list[str] = []
    pending: list[Reseal] = []

    def flush() -> None:
        if pending:
            counts["resealed"] += data.reseal(pending)
            pending.clear()

    for n, value in enumerate(values_of(data.sealed_batches(found.present))):
        if n % _EVERY == 0:
            ctx.check()
            ctx.report("secrets-rotate", n, None, unit="values")
        blob = value.blob
        if not blob:
            counts["empty"] += 1
        elif open_new(blob) is not None:
            counts["already"] += 1
        elif (plaintext := open_old(blob)) is not None:
            counts["to_reseal"] += 1
            if not dry_run:
                pending.append(Reseal(value=value, blob=seal_new(plaintext)))
                if len(pending) >= batch:
                    flush()
        else:
            counts["neither"] += 1
            if len(neither) < 100:
                neither.append(value.where)
    if not dry_run:
        flush()
    after = None if dry_run else check_secrets(data, new, ctx=ctx, columns=columns)
    report = RotationReport(
        old_fingerprint=fingerprint(old),
        new_fingerprint=new_fp,
        dry_run=dry_run,
        to_reseal=counts["to_reseal"],
        resealed=counts["resealed"],
        already=counts["already"],
        neither=counts["neither"],
        neither_where=tuple(neither),
        empty=counts["empty"],
        absent=found.absent,
        check=after,
    )
    log.info("key rotation: %s", report.describe())
    return report
