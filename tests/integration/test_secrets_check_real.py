"""The decrypt check on a real database with damaged rows: each failing row is named by its id
(read without row keys, then looked up), empty values are counted apart, a wrong key fails
everything and names the first rows in sorted order, and no value is ever shown."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from gocdbackup import check_secrets
from gocdbackup.gocdnext.cipher import encrypt
from gocdbackup.model.secrets import MAX_FAILING_IDS, by_column
from gocdbackup.testing import CANARY_SECRET
from tests.conftest import SECRET_KEY

pytestmark = pytest.mark.integration


def admin(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


def test_damaged_rows_are_named_and_empty_ones_counted_apart(gocdnext_db: str) -> None:
    before = check_secrets(gocdnext_db, secret_key=SECRET_KEY.hex())
    assert before.passed
    other = encrypt(os.urandom(32), b"sealed with another key")
    with admin(gocdnext_db) as conn:
        ids = [
            str(r[0])
            for r in conn.execute(
                "SELECT id FROM secrets WHERE value_enc IS NOT NULL ORDER BY name LIMIT 3"
            )
        ]
        # truncated; another key's (twice: the same blob in two rows names both); empty
        conn.execute(
            "UPDATE secrets SET value_enc = substring(value_enc FROM 1 FOR 20) WHERE id = %s",
            (ids[0],),
        )
        conn.execute("UPDATE secrets SET value_enc = %s WHERE id = ANY(%s)", (other, ids[1:]))
        (cluster,) = conn.execute(
            "UPDATE clusters SET credential_enc = '' WHERE id = (SELECT min(id::text)::uuid"
            " FROM clusters WHERE credential_enc IS NOT NULL) RETURNING id::text"
        ).fetchone() or ("",)
        (profile,) = conn.execute(
            "UPDATE runner_profiles SET secrets = secrets || %s WHERE name = 'gpu'"
            " RETURNING id::text",
            (Jsonb({"BROKEN": "not hex!"}),),
        ).fetchone() or ("",)
    check = check_secrets(gocdnext_db, secret_key=SECRET_KEY.hex())
    columns = by_column(check)
    assert not check.passed
    assert not check.wrong_key
    secrets = columns["secrets.value_enc"]
    assert secrets.failed == 3
    assert secrets.failing == tuple(sorted(f"secrets.value_enc {i}" for i in ids))
    assert secrets.ok == before.columns[0].ok - 3
    clusters, profiles = columns["clusters.credential_enc"], columns["runner_profiles.secrets"]
    assert clusters.failed == 0
    assert clusters.empty == by_column(before)["clusters.credential_enc"].empty + 1
    assert f"clusters.credential_enc {cluster}" not in check.summary()
    assert profiles.failing == (f"runner_profiles.secrets {profile} [BROKEN]",)
    shown = repr(check) + check._repr_html_() + str(check.summary()) + str(check.rows())
    assert CANARY_SECRET not in shown
    assert other.hex() not in shown


def test_a_wrong_key_fails_everything_and_names_as_many_rows_as_kept(gocdnext_db: str) -> None:
    bulk = MAX_FAILING_IDS + 50
    with admin(gocdnext_db) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO clusters (name, auth_type, credential_enc) VALUES (%s, 'token', %s)",
            [(f"bulk-{i}", encrypt(SECRET_KEY, b"token")) for i in range(bulk)],
        )
        every = sorted(
            f"clusters.credential_enc {r[0]}"
            for r in conn.execute(
                "SELECT id::text FROM clusters WHERE octet_length(credential_enc) > 0"
            )
        )
    check = check_secrets(gocdnext_db, secret_key=os.urandom(32).hex())
    assert check.wrong_key
    assert check.ok == 0
    clusters = by_column(check)["clusters.credential_enc"]
    assert clusters.failed == len(every)
    assert len(clusters.failing) == MAX_FAILING_IDS
    assert list(clusters.failing) == sorted(clusters.failing)
    assert set(clusters.failing) <= set(every)
