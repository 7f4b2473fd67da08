"""gocdnext's sealed values on a real database: the fixture seals all ten encrypted columns as
gocdnext does, and ``GocdnextTables`` reads them (one snapshot, a server-side cursor, NULLs as
None, map entries hex-decoded) and reseals them (compare-and-set, one transaction)."""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from gocdbackup.drivers.gocdnext_fixture import open_all
from gocdbackup.drivers.postgres import GocdnextTables, PostgresServer
from gocdbackup.errors import ConfigError, PostgresError
from gocdbackup.gocdnext.cipher import decrypt, encrypt
from gocdbackup.gocdnext.secrets import ENCRYPTED_COLUMNS
from gocdbackup.model.secrets import Reseal, SealedValue
from gocdbackup.ports import GocdnextData
from gocdbackup.testing import CANARY_NAME, CANARY_SECRET, LocalPostgres
from tests.conftest import SECRET_KEY

pytestmark = pytest.mark.integration

NAMES = [c.name for c in ENCRYPTED_COLUMNS]
NEW_KEY = os.urandom(32)
#: the columns the fixture leaves a NULL in (gocdnext allows one there)
NULLABLE = {
    "secrets.value_enc",  # external secrets (vault)
    "platform_settings.credentials_enc",
    "vcs_integrations.private_key",
    "vcs_integrations.webhook_secret",
    "scm_sources.webhook_secret",
    "clusters.credential_enc",
}


def tables(dsn: str) -> GocdnextData:
    return GocdnextTables(PostgresServer(dsn))


def admin(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


def by_where(data: GocdnextData) -> dict[str, SealedValue]:
    return {v.where: v for v in data.sealed_values(ENCRYPTED_COLUMNS)}


def test_the_fixture_seals_every_encrypted_column_with_its_key(gocdnext_db: str) -> None:
    opened = open_all(gocdnext_db, SECRET_KEY)
    assert list(opened) == NAMES
    assert all(opened.values()), {k: len(v) for k, v in opened.items()}
    assert CANARY_SECRET.encode() in opened["secrets.value_enc"]
    # the platform credentials are JSON objects, the OIDC keys PKCS#8 DER (a SEQUENCE)
    assert all(p.startswith(b"{") for p in opened["platform_settings.credentials_enc"])
    assert all(p[:1] == b"\x30" for p in opened["oidc_signing_keys.private_key_enc"])
    with pytest.raises(ConfigError):
        open_all(gocdnext_db, NEW_KEY)
    with admin(gocdnext_db) as conn:
        (canary,) = conn.execute(
            "SELECT value_enc FROM secrets WHERE name = %s AND project_id IS NULL", (CANARY_NAME,)
        ).fetchone() or (None,)
        maps = [m for (m,) in conn.execute("SELECT secrets FROM runner_profiles").fetchall()]
    assert canary is not None
    assert CANARY_SECRET.encode() not in bytes(canary)
    hexes = [h for m in maps for h in m.values()]
    assert hexes
    assert all(h == h.lower() and bytes.fromhex(h) for h in hexes)


def test_sealed_values_yields_every_value_column_by_column_nulls_as_none(gocdnext_db: str) -> None:
    data = tables(gocdnext_db)
    assert data.encrypted_columns_present(ENCRYPTED_COLUMNS) == NAMES
    values = list(data.sealed_values(ENCRYPTED_COLUMNS))
    assert [v.column for v in values] == sorted((v.column for v in values), key=NAMES.index)
    assert len({v.where for v in values}) == len(values)
    assert {v.column for v in values if v.blob is None} == NULLABLE
    sealed = [v for v in values if v.blob is not None]
    plain = Counter((v.column, decrypt(SECRET_KEY, v.blob or b"")) for v in sealed)
    expected = Counter((c, p) for c, ps in open_all(gocdnext_db, SECRET_KEY).items() for p in ps)
    assert plain == expected
    profiles = [v for v in values if v.column == "runner_profiles.secrets"]
    assert profiles
    assert all(v.entry for v in profiles)
    assert all(not v.entry for v in values if v.column != "runner_profiles.secrets")
    # a subset of columns, in the order asked
    some = [ENCRYPTED_COLUMNS[9], ENCRYPTED_COLUMNS[0]]
    asked = [c.name for c in some]
    got = [v.column for v in data.sealed_values(some)]
    assert got == sorted(got, key=asked.index)
    assert set(got) == set(asked)


def _backend_query(dsn: str, conn: psycopg.Connection[Any]) -> tuple[str, str]:
    """(state, last query) of the one other backend connected to ``dsn``'s database."""
    row = conn.execute(
        "SELECT state, query FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend'",
        (conninfo_to_dict(dsn)["dbname"],),
    ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def test_sealed_values_stream_in_batches_in_one_snapshot(
    gocdnext_db: str,
) -> None:
    bulk = 5000
    with admin(gocdnext_db) as conn:
        conn.execute(
            "INSERT INTO clusters (name, auth_type, credential_enc)"
            " SELECT 'bulk-' || i, 'token', decode(md5(i::text) || md5(i::text), 'hex')"
            " FROM generate_series(1, %s) i",
            (bulk,),
        )
        values = tables(gocdnext_db).sealed_values(ENCRYPTED_COLUMNS)
        first = next(values)
        assert first.column == "secrets.value_enc"
        # changes committed after the read began are not seen: one REPEATABLE READ snapshot
        conn.execute(
            "INSERT INTO clusters (name, auth_type, credential_enc) VALUES ('late', 'token', %s)",
            (encrypt(SECRET_KEY, b"late"),),
        )
        conn.execute("DELETE FROM secrets WHERE name = %s", (CANARY_NAME,))
        seen, observed, read = [first], ("", ""), 0
        for value in values:
            seen.append(value)
            read += value.column == "clusters.credential_enc"
            if read == 1200:
                observed = _backend_query(gocdnext_db, conn)
        assert _reader_gone(gocdnext_db, conn)
    # mid-way, the column's one query streams (its rows in flight or already sent) inside the
    # transaction: no cursor round trips
    state, query = observed
    assert state in {"active", "idle in transaction"}
    assert query.upper().startswith("SELECT")
    assert "credential_enc" in query
    clusters = [v for v in seen if v.column == "clusters.credential_enc"]
    assert len(clusters) == bulk + 3  # the fixture's three, the bulk rows, not the late one
    secrets = [v for v in seen if v.column == "secrets.value_enc" and v.blob is not None]
    assert CANARY_SECRET.encode() in {decrypt(SECRET_KEY, v.blob or b"") for v in secrets}


def _reader_gone(dsn: str, conn: psycopg.Connection[Any]) -> bool:
    """The reading connection is closed once the values are all read."""
    for _ in range(50):
        if not conn.execute(
            "SELECT FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'",
            (conninfo_to_dict(dsn)["dbname"],),
        ).fetchall():
            return True
        time.sleep(0.1)
    return False


def test_map_entries_that_are_not_hex_come_back_unopenable(gocdnext_db: str) -> None:
    sealed = encrypt(SECRET_KEY, b"upper")
    with admin(gocdnext_db) as conn:
        odd = {"BROKEN": "not hex!", "ODD": "abc", "NOTHING": None, "UP": sealed.hex().upper()}
        conn.execute(
            "UPDATE runner_profiles SET secrets = secrets || %s WHERE name = 'gpu'", (Jsonb(odd),)
        )
        conn.execute("UPDATE runner_profiles SET secrets = '\"garbage\"' WHERE name = 'plain'")
        ids = dict(conn.execute("SELECT name, id::text FROM runner_profiles").fetchall())
    gpu, plain = ids["gpu"], ids["plain"]
    found = by_where(tables(gocdnext_db))
    where = f"runner_profiles.secrets {gpu}"
    assert found[f"{where} [BROKEN]"].blob == b"not hex!"
    assert found[f"{where} [ODD]"].blob == b"abc"
    assert found[f"{where} [NOTHING]"].blob is None
    assert found[f"{where} [UP]"].blob == sealed
    assert decrypt(SECRET_KEY, found[f"{where} [HF_TOKEN]"].blob or b"")
    for entry in ("BROKEN", "ODD"):
        with pytest.raises(ConfigError):
            decrypt(SECRET_KEY, found[f"{where} [{entry}]"].blob or b"")
    # a map that is not an object is one unopenable value, not a crash and not nothing
    assert found[f"runner_profiles.secrets {plain}"].blob == b"garbage"
    # an upper-case entry is still the value read: it reseals (written back lower-case)
    data = tables(gocdnext_db)
    renewed = encrypt(NEW_KEY, b"upper")
    assert data.reseal([Reseal(value=found[f"{where} [UP]"], blob=renewed)]) == 1
    with admin(gocdnext_db) as conn:
        (text,) = conn.execute(
            "SELECT secrets ->> 'UP' FROM runner_profiles WHERE name = 'gpu'"
        ).fetchone() or ("",)
    assert text == renewed.hex()


def _renew(value: SealedValue) -> Reseal:
    return Reseal(value=value, blob=encrypt(NEW_KEY, decrypt(SECRET_KEY, value.blob or b"")))


def test_reseal_replaces_only_values_still_holding_the_old_blob(gocdnext_db: str) -> None:
    data = tables(gocdnext_db)
    values = [v for v in data.sealed_values(ENCRYPTED_COLUMNS) if v.blob is not None]
    changes = [_renew(v) for v in values]
    # meanwhile gocdnext rewrites one secret and one runner-profile entry
    moved_secret = next(v for v in values if v.column == "secrets.value_enc")
    entries = [v for v in values if v.column == "runner_profiles.secrets"]
    moved_entry = next(v for v in entries if v.entry == "AWS_KEY_ID")
    kept_entry = next(v for v in entries if v.entry == "AWS_SECRET")  # same map as moved_entry
    fresh = encrypt(SECRET_KEY, b"written meanwhile")
    with admin(gocdnext_db) as conn:
        conn.execute(
            "UPDATE secrets SET value_enc = %s WHERE id = %s", (fresh, moved_secret.row_key)
        )
        conn.execute(
            "UPDATE runner_profiles"
            " SET secrets = jsonb_set(secrets, '{AWS_KEY_ID}', to_jsonb(%s::text)) WHERE id = %s",
            (fresh.hex(), moved_entry.row_key),
        )
    assert data.reseal(changes) == len(changes) - 2
    after = by_where(data)
    assert after[moved_secret.where].blob == fresh  # not overwritten
    assert after[moved_entry.where].blob == fresh  # nor this entry,
    assert decrypt(NEW_KEY, after[kept_entry.where].blob or b"")  # while its neighbour was
    renewed = [after[c.value.where] for c in changes if c.value not in (moved_secret, moved_entry)]
    assert [r.blob for r in renewed] == [
        c.blob for c in changes if c.value not in (moved_secret, moved_entry)
    ]
    # NULLs stay NULL, and resealing again finds nothing still holding the old blobs
    assert {v.column for v in after.values() if v.blob is None} == NULLABLE
    assert data.reseal(changes) == 0
    assert data.reseal([]) == 0


def test_reseal_is_one_transaction(gocdnext_db: str) -> None:
    data = tables(gocdnext_db)
    values = [v for v in data.sealed_values(ENCRYPTED_COLUMNS) if v.blob is not None]
    good = [_renew(v) for v in values[:3]]
    broken = SealedValue(column="clusters.credential_enc", row_key="not-a-uuid", blob=b"x" * 40)
    bad = Reseal(value=broken, blob=b"y" * 40)  # fails in the database, after the good ones
    with pytest.raises(PostgresError):
        data.reseal([*good, bad])
    assert [by_where(data)[c.value.where].blob for c in good] == [c.value.blob for c in good]
    # what is not a sealed value of gocdnext's is refused before anything is written
    for value in (
        SealedValue(column="users.password_hash", row_key=values[0].row_key, blob=b"x"),
        SealedValue(column="secrets.value_enc", row_key=values[0].row_key),  # holds nothing
        SealedValue(column="runner_profiles.secrets", row_key=values[0].row_key, blob=b"x"),
    ):
        with pytest.raises(ConfigError):
            data.reseal([*good, Reseal(value=value, blob=b"z")])
    assert [by_where(data)[c.value.where].blob for c in good] == [c.value.blob for c in good]


def test_a_database_without_some_encrypted_tables_still_works(gocdnext_db: str) -> None:
    with admin(gocdnext_db) as conn:
        conn.execute("DROP TABLE clusters, oidc_signing_keys")
        conn.execute("ALTER TABLE vcs_integrations DROP COLUMN webhook_secret")
    data = tables(gocdnext_db)
    gone = {"clusters.credential_enc", "oidc_signing_keys.private_key_enc"}
    gone.add("vcs_integrations.webhook_secret")
    present = [n for n in NAMES if n not in gone]
    assert data.encrypted_columns_present(ENCRYPTED_COLUMNS) == present
    values = list(data.sealed_values(ENCRYPTED_COLUMNS))
    assert {v.column for v in values} == set(present)
    sealed = [v for v in values if v.blob is not None]
    # a value of a column that is not there fails the whole transaction
    ghost = SealedValue(column="clusters.credential_enc", row_key=sealed[0].row_key, blob=b"x")
    with pytest.raises(PostgresError):
        data.reseal([_renew(sealed[0]), Reseal(value=ghost, blob=b"y")])
    assert by_where(data)[sealed[0].where].blob == sealed[0].blob
    assert data.reseal([_renew(v) for v in sealed]) == len(sealed)
    assert all(decrypt(NEW_KEY, v.blob or b"") for v in by_where(data).values() if v.blob)


def test_a_database_that_is_not_gocdnext_has_no_sealed_values(pg: LocalPostgres) -> None:
    data = tables(pg.dsn("postgres"))
    assert data.encrypted_columns_present(ENCRYPTED_COLUMNS) == []
    assert list(data.sealed_values(ENCRYPTED_COLUMNS)) == []
