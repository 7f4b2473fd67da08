"""The decrypt check, the backup's sampled check and key rotation, against the public fakes
(Hypothesis: any mix of values rotates to all-ok; a rotation interrupted at any batch is
finished by running it again; a value under neither key is reported and left as it was)."""

from __future__ import annotations

import contextlib

import pytest
from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError, ConfirmationMismatch, KeyMismatch, PostgresError
from gocdbackup.gocdnext.cipher import encrypt, opener
from gocdbackup.gocdnext.secrets import fingerprint
from gocdbackup.model.secrets import SealedValue, SecretsCheck
from gocdbackup.ops import restore_backup, take_backup
from gocdbackup.ops.secrets import (
    backups_sealed_with,
    check_backup_key,
    check_secrets,
    rotate_key,
    sample_key_check,
)
from gocdbackup.repository import Repository
from gocdbackup.testing import (
    CANARY_SECRET,
    FakeDatabaseContents,
    FakeGocdnext,
    FakePostgres,
    fill_sealed,
)

OLD, NEW, OTHER = (bytes([n]) * 32 for n in (1, 2, 3))


def fake(per_column: int = 2) -> tuple[FakeGocdnext, FakeDatabaseContents]:
    contents = FakeDatabaseContents(tables={"public.runs": 3})
    fill_sealed(contents, OLD, per_column=per_column)
    return FakeGocdnext(FakePostgres("gocdnext", {"gocdnext": contents})), contents


def test_the_right_key_opens_everything(ctx: OpContext) -> None:
    data, contents = fake()
    check = check_secrets(data, OLD, ctx=ctx)
    assert check.passed
    assert check.ok == sum(1 for v in contents.sealed if v.blob)
    assert check.empty == sum(1 for v in contents.sealed if not v.blob)
    assert check.fingerprint == fingerprint(OLD)
    assert len(check.columns) == 10


def test_a_wrong_key_is_not_damaged_rows(ctx: OpContext) -> None:
    data, contents = fake()
    wrong = check_secrets(data, OTHER, ctx=ctx)
    assert wrong.wrong_key
    assert not wrong.passed
    n = next(i for i, v in enumerate(contents.sealed) if v.blob)
    contents.sealed[n] = evolve(contents.sealed[n], blob=(contents.sealed[n].blob or b"")[:-1])
    damaged = check_secrets(data, OLD, ctx=ctx)
    assert (damaged.failed, damaged.wrong_key) == (1, False)
    failing = [w for c in damaged.columns for w in c.failing]
    assert failing == [contents.sealed[n].where]
    text = repr(damaged) + str(damaged.summary()) + damaged._repr_html_()
    assert CANARY_SECRET not in text


def test_missing_columns_are_reported_absent(ctx: OpContext) -> None:
    data, contents = fake()
    contents.encrypted_columns.remove("clusters.credential_enc")
    check = check_secrets(data, OLD, ctx=ctx)
    absent = [c.column for c in check.columns if not c.present]
    assert absent == ["clusters.credential_enc"]
    assert check.passed


def test_rotation_is_a_dry_run_until_confirmed_with_the_new_fingerprint(ctx: OpContext) -> None:
    data, contents = fake()
    before = list(contents.sealed)
    dry = rotate_key(data, OLD, NEW, ctx=ctx)
    assert dry.dry_run
    assert dry.to_reseal == sum(1 for v in before if v.blob)
    assert contents.sealed == before
    with pytest.raises(ConfirmationMismatch, match=fingerprint(NEW)):
        rotate_key(data, OLD, NEW, ctx=ctx, dry_run=False, confirm=fingerprint(OLD))
    assert contents.sealed == before
    with pytest.raises(ConfigError):
        rotate_key(data, OLD, OLD, ctx=ctx)
    done = rotate_key(data, OLD, NEW, ctx=ctx, dry_run=False, confirm=fingerprint(NEW), batch=3)
    assert done.complete
    assert done.resealed == dry.to_reseal
    assert check_secrets(data, NEW, ctx=ctx).passed
    again = rotate_key(data, OLD, NEW, ctx=ctx, dry_run=False, confirm=fingerprint(NEW))
    assert (again.to_reseal, again.already) == (0, done.resealed)  # idempotent


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from(["old", "new", "neither", "none"]), min_size=1, max_size=30),
    st.integers(1, 7),
    st.integers(0, 6),
)
def test_any_mix_rotates_and_an_interrupted_rotation_finishes(
    kinds: list[str], batch: int, fail_at: int
) -> None:
    ctx = OpContext()
    contents = FakeDatabaseContents()
    keys = {"old": OLD, "new": NEW, "neither": OTHER}
    contents.sealed = [
        SealedValue(
            column="secrets.value_enc",
            row_key=f"{n:04d}",
            blob=None if kind == "none" else encrypt(keys[kind], f"value {n}".encode()),
        )
        for n, kind in enumerate(kinds)
    ]
    server = FakePostgres("gocdnext", {"gocdnext": contents})
    data = FakeGocdnext(server)
    untouched = {
        v.row_key: v.blob for v, k in zip(contents.sealed, kinds, strict=True) if k == "neither"
    }
    data.fail_reseal = fail_at  # a crash after ``fail_at`` batches: the next one rolls back
    with contextlib.suppress(PostgresError):
        rotate_key(data, OLD, NEW, ctx=ctx, dry_run=False, confirm=fingerprint(NEW), batch=batch)
    data.fail_reseal = False
    done = rotate_key(data, OLD, NEW, ctx=ctx, dry_run=False, confirm=fingerprint(NEW), batch=batch)
    opens_new = opener(NEW)
    for value, kind in zip(contents.sealed, kinds, strict=True):
        if kind in ("old", "new"):
            assert value.blob is not None
            assert opens_new(value.blob) == f"value {int(value.row_key)}".encode()
        elif kind == "neither":
            assert value.blob == untouched[value.row_key]
        else:
            assert value.blob is None
    assert done.neither == kinds.count("neither")
    assert done.check is not None
    assert done.check.failed == kinds.count("neither")


def test_a_backup_records_the_key_and_a_restore_refuses_another(
    repo: Repository, db: FakePostgres, gocdnext: FakeGocdnext, ctx: OpContext
) -> None:
    fill_sealed(db.databases["gocdnext"], OLD)
    sample = sample_key_check(gocdnext, OLD, per_column=1)
    assert (sample.checked, sample.opened) == (10, 10)  # one value of each column
    backup = take_backup(repo, db, ctx=ctx, gocdnext=gocdnext, secret_key=OLD)
    assert backup.key_check == sample_key_check(gocdnext, OLD)
    assert f"key {fingerprint(OLD)}" in backup.describe()
    check_backup_key(backup, OLD)
    with pytest.raises(KeyMismatch, match=f"taken with key {fingerprint(OLD)}"):
        check_backup_key(backup, NEW)
    assert backups_sealed_with([backup], fingerprint(OLD)) == [backup.id]
    assert backups_sealed_with([backup], fingerprint(NEW)) == []
    with pytest.raises(ConfigError, match="gocdnext="):
        take_backup(repo, db, ctx=ctx, secret_key=OLD)


def test_rotation_never_shows_a_value(ctx: OpContext) -> None:
    data, _ = fake()
    report = rotate_key(data, OLD, NEW, ctx=ctx, dry_run=False, confirm=fingerprint(NEW))
    text = repr(report) + str(report.summary()) + report._repr_html_() + report.describe()
    assert CANARY_SECRET not in text
    assert OLD.hex() not in text
    assert NEW.hex() not in text


def test_a_restore_whose_values_open_with_nothing_leaves_the_target_untouched(
    repo: Repository, db: FakePostgres, gocdnext: FakeGocdnext, ctx: OpContext
) -> None:
    """A backup taken without the key proves nothing about it: the staging copy is checked
    before the swap, and a key that opens nothing stops the restore there."""
    fill_sealed(db.databases["gocdnext"], OLD)
    backup = take_backup(repo, db, ctx=ctx)
    assert backup.key_check is None
    staging_checks: list[str] = []

    def wrong(staging: str) -> SecretsCheck:
        staging_checks.append(staging)
        return check_secrets(gocdnext, OTHER, ctx=ctx)

    with pytest.raises(KeyMismatch, match="the target was not touched"):
        restore_backup(
            repo, db, backup.id, confirm=backup.id, ctx=ctx, target="restored", check_secrets=wrong
        )
    assert "restored" not in db.databases
    assert not any(name.startswith("restored") for name in db.databases)  # staging dropped
    assert len(staging_checks) == 1

    def right(staging: str) -> SecretsCheck:
        return check_secrets(gocdnext, OLD, ctx=ctx)

    report = restore_backup(
        repo, db, backup.id, confirm=backup.id, ctx=ctx, target="restored", check_secrets=right
    )
    assert report.secrets is not None
    assert report.secrets.passed
