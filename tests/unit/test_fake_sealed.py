"""The fakes' sealed values (``FakeDatabaseContents.sealed``, ``FakeGocdnext``'s three
secrets members and ``fill_sealed``) behave as the Postgres driver does: present columns only,
ordered by column, row key and entry, one snapshot per read, compare-and-set all or nothing."""

from __future__ import annotations

import os

import pytest
from attrs import evolve

from gocdbackup.errors import ConfigError, PostgresError
from gocdbackup.gocdnext.cipher import decrypt, encrypt
from gocdbackup.gocdnext.secrets import ENCRYPTED_COLUMNS
from gocdbackup.model.secrets import Reseal, SealedValue
from gocdbackup.ports import GocdnextData
from gocdbackup.testing import (
    CANARY_SECRET,
    FakeDatabaseContents,
    FakeGocdnext,
    FakePostgres,
    fill_sealed,
)

KEY, NEW_KEY = os.urandom(32), os.urandom(32)
NAMES = [c.name for c in ENCRYPTED_COLUMNS]


def fake(contents: FakeDatabaseContents | None = None) -> tuple[FakeGocdnext, FakeDatabaseContents]:
    db = contents or FakeDatabaseContents()
    return FakeGocdnext(FakePostgres("gocdnext", {"gocdnext": db})), db


def renew(value: SealedValue) -> Reseal:
    return Reseal(value=value, blob=encrypt(NEW_KEY, decrypt(KEY, value.blob or b"")))


def test_fill_sealed_seals_every_column_with_nulls_and_the_canary() -> None:
    _, db = fake()
    added = fill_sealed(db, KEY, per_column=3)
    assert db.sealed == added
    assert {v.column for v in added if v.blob is not None} == set(NAMES)
    nullable = {v.column for v in added if v.blob is None}
    assert "secrets.value_enc" in nullable
    assert "auth_providers.client_secret" not in nullable
    assert "runner_profiles.secrets" not in nullable
    opened = {v.where: decrypt(KEY, v.blob) for v in added if v.blob is not None}
    assert CANARY_SECRET.encode() in opened.values()
    assert len(opened) == 3 * len(NAMES) + 1
    profiles = [v for v in added if v.column == "runner_profiles.secrets"]
    assert len({v.row_key for v in profiles}) == 1  # one map ...
    assert len({v.entry for v in profiles}) == 3  # ... of three entries
    assert all(v.entry == "" for v in added if v.column != "runner_profiles.secrets")
    with pytest.raises(ConfigError):
        decrypt(NEW_KEY, added[0].blob or b"")


def test_only_present_columns_are_listed_and_read_in_order() -> None:
    data: GocdnextData
    data, db = fake(FakeDatabaseContents(encrypted_columns=NAMES[:2] + NAMES[5:]))
    fill_sealed(db, KEY)
    present = NAMES[:2] + NAMES[5:]
    assert data.encrypted_columns_present(ENCRYPTED_COLUMNS) == present
    assert data.encrypted_columns_present(ENCRYPTED_COLUMNS[::-1]) == present[::-1]
    values = list(data.sealed_values(ENCRYPTED_COLUMNS))
    assert [v.column for v in values] == sorted((v.column for v in values), key=NAMES.index)
    assert {v.column for v in values} == set(present)
    # a batch at a time, each of one column, at most batch_rows long
    batches = list(data.sealed_batches(ENCRYPTED_COLUMNS))
    assert all(0 < len(b) <= 3 for b in batches)
    assert [v for b in batches for v in b.values()] == values
    asked = [ENCRYPTED_COLUMNS[9], ENCRYPTED_COLUMNS[0], ENCRYPTED_COLUMNS[3]]  # 3 is absent
    got = [v.column for v in data.sealed_values(asked)]
    assert got == sorted(got, key=[c.name for c in asked].index)
    assert set(got) == {NAMES[9], NAMES[0]}
    # a database without any of them
    empty, _ = fake(FakeDatabaseContents(encrypted_columns=[]))
    assert empty.encrypted_columns_present(ENCRYPTED_COLUMNS) == []
    assert list(empty.sealed_values(ENCRYPTED_COLUMNS)) == []


def test_reseal_is_compare_and_set() -> None:
    data, db = fake()
    fill_sealed(db, KEY)
    values = [v for v in data.sealed_values(ENCRYPTED_COLUMNS) if v.blob is not None]
    changes = [renew(v) for v in values]
    # meanwhile one value and one map entry are rewritten
    moved = [values[0], next(v for v in values if v.column == "runner_profiles.secrets")]
    fresh = encrypt(KEY, b"written meanwhile")
    db.sealed = [evolve(v, blob=fresh) if v in moved else v for v in db.sealed]
    assert data.reseal(changes) == len(changes) - 2
    after = {v.where: v.blob for v in data.sealed_values(ENCRYPTED_COLUMNS)}
    assert [after[v.where] for v in moved] == [fresh, fresh]
    for change in changes:
        if change.value not in moved:
            assert after[change.value.where] == change.blob
    assert sum(b is None for b in after.values()) == sum(v.blob is None for v in db.sealed)
    assert data.reseal(changes) == 0
    assert data.reseal([]) == 0


def test_reseal_while_reading_does_not_disturb_the_read() -> None:
    data, db = fake()
    fill_sealed(db, KEY)
    before = list(data.sealed_values(ENCRYPTED_COLUMNS))
    read, changed = [], 0
    for value in data.sealed_values(ENCRYPTED_COLUMNS):
        read.append(value)
        if value.blob is not None:
            changed += data.reseal([renew(value)])
    assert read == before  # one snapshot, taken when the read began
    assert changed == sum(v.blob is not None for v in before)


def test_reseal_is_all_or_nothing() -> None:
    data, db = fake(FakeDatabaseContents(encrypted_columns=NAMES[:9]))
    fill_sealed(db, KEY)
    values = [v for v in data.sealed_values(ENCRYPTED_COLUMNS) if v.blob is not None]
    good = [renew(v) for v in values[:3]]
    snapshot = list(db.sealed)
    missing = SealedValue(column=NAMES[9], row_key=values[0].row_key, blob=b"x")
    with pytest.raises(PostgresError):
        data.reseal([*good, Reseal(value=missing, blob=b"y")])
    for value in (
        SealedValue(column="users.password_hash", row_key=values[0].row_key, blob=b"x"),
        SealedValue(column="secrets.value_enc", row_key=values[0].row_key),  # holds nothing
        SealedValue(column="runner_profiles.secrets", row_key=values[0].row_key, blob=b"x"),
    ):
        with pytest.raises(ConfigError):
            data.reseal([*good, Reseal(value=value, blob=b"z")])
    data.fail_reseal = True
    with pytest.raises(PostgresError):
        data.reseal(good)
    assert db.sealed == snapshot
    data.fail_reseal = False
    assert data.reseal(good) == 3


def test_a_copy_of_the_contents_keeps_its_own_sealed_values() -> None:
    db = FakeDatabaseContents()
    fill_sealed(db, KEY)
    copy = db.copy()
    copy.sealed.clear()
    copy.encrypted_columns.remove(NAMES[0])
    assert db.sealed
    assert NAMES[0] in db.encrypted_columns
    assert FakeDatabaseContents().encrypted_columns == NAMES
