"""gocdnext's encrypted columns: every value sealed with ``GOCDNEXT_SECRET_KEY`` (see
:mod:`gocdbackup.gocdnext.cipher` for the framing), where it lives and in which form, and the
key's fingerprint (a keyed hash that names the key and reveals nothing about it)."""

from __future__ import annotations

import enum
import hashlib
import hmac

from attrs import frozen


class Form(enum.Enum):
    """How a column holds its sealed value(s)."""

    BYTEA = "bytea"  # one blob
    HEX_MAP = "hex_map"  # jsonb {NAME: lowercase hex of a blob} (runner_profiles.secrets)


@frozen(kw_only=True)
class EncryptedColumn:
    table: str
    column: str
    #: the primary key column a failing value is reported by (never the value)
    key_column: str = "id"
    form: Form = Form.BYTEA
    #: what the plaintext is, for people
    holds: str = ""

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


#: all ten, in the order the checks report them
ENCRYPTED_COLUMNS = (
    EncryptedColumn(table="secrets", column="value_enc", holds="project and global secrets"),
    EncryptedColumn(
        table="runner_profiles", column="secrets", form=Form.HEX_MAP, holds="runner secrets"
    ),
    EncryptedColumn(
        table="platform_settings",
        column="credentials_enc",
        key_column="key",
        holds="platform credentials (JSON)",
    ),
    EncryptedColumn(table="auth_providers", column="client_secret", holds="OAuth client secret"),
    EncryptedColumn(table="vcs_integrations", column="private_key", holds="GitHub App key"),
    EncryptedColumn(table="vcs_integrations", column="webhook_secret", holds="webhook secret"),
    EncryptedColumn(table="scm_sources", column="webhook_secret", holds="webhook secret"),
    EncryptedColumn(table="scm_credentials", column="auth_ref_encrypted", holds="SCM token"),
    EncryptedColumn(table="oidc_signing_keys", column="private_key_enc", holds="OIDC key"),
    EncryptedColumn(table="clusters", column="credential_enc", holds="cluster credentials"),
)

_FINGERPRINT_LABEL = b"gocdbackup key fingerprint v1"
#: hex characters shown: 64 bits tell keys apart and reveal nothing usable about them
FINGERPRINT_CHARS = 16


def fingerprint(key: bytes) -> str:
    """HMAC-SHA256 keyed by the key over a fixed label, first 16 hex characters: the same key
    always gives the same fingerprint; it cannot be turned back into the key."""
    return hmac.new(key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:FINGERPRINT_CHARS]
