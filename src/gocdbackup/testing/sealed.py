"""Sealed values for the fakes: what a gocdnext database holds in its ten encrypted columns,
sealed under a key, with NULLs where gocdnext allows them and the canary secret."""

from __future__ import annotations

from attrs import evolve

from gocdbackup.drivers.gocdnext_fixture import CANARY_SECRET
from gocdbackup.gocdnext.cipher import encrypt
from gocdbackup.gocdnext.secrets import ENCRYPTED_COLUMNS, Form
from gocdbackup.model.secrets import SealedValue
from gocdbackup.testing.contents import FakeDatabaseContents

#: tables whose encrypted column is NOT NULL
_NOT_NULL = ("auth_providers", "scm_credentials", "oidc_signing_keys", "runner_profiles")


def fill_sealed(
    contents: FakeDatabaseContents, key: bytes, *, per_column: int = 2
) -> list[SealedValue]:
    """Add to ``contents.sealed`` what a gocdnext database holds, sealed with ``key`` (32
    bytes): ``per_column`` values in each present column (a runner profile's as entries of one
    map), a NULL where gocdnext allows one, and the canary (:data:`CANARY_SECRET`) among the
    secrets.  The values added; the plaintext of each is ``b"<where> plaintext"``."""
    added = []
    for column in (c for c in ENCRYPTED_COLUMNS if c.name in contents.encrypted_columns):
        mapped = column.form is Form.HEX_MAP
        for n in range(per_column):
            value = SealedValue(
                column=column.name,
                row_key=f"00000000-0000-4000-8000-{0 if mapped else n:012d}",
                entry=f"NAME_{n}" if mapped else "",
            )
            added.append(evolve(value, blob=encrypt(key, f"{value.where} plaintext".encode())))
        if column.table not in _NOT_NULL:
            added.append(SealedValue(column=column.name, row_key=f"{column.column}-null"))
    if "secrets.value_enc" in contents.encrypted_columns:
        canary = encrypt(key, CANARY_SECRET.encode())
        added.append(SealedValue(column="secrets.value_enc", row_key="canary", blob=canary))
    contents.sealed.extend(added)
    return added
