"""Where gocdnext's artefact store is, from its own ``platform_settings['artifacts.storage']``
row: pure mapping to an fsspec URL and storage options."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from gocdbackup.errors import ConfigError

DEFAULT_FS_ROOT = "/var/lib/gocdnext/artifacts"


@frozen(kw_only=True)
class StoreLocation:
    url: str
    options: dict[str, Any] = field(repr=False, factory=dict)  # holds credentials: never shown

    def __repr__(self) -> str:
        return f"StoreLocation({self.url!r}, options=<{len(self.options)} hidden>)"


def store_location(
    setting: Mapping[str, Any], credentials: Mapping[str, str] | None, *, fs_root: str
) -> StoreLocation:
    """The store a ``platform_settings['artifacts.storage']`` value (and its decrypted
    credentials) describes, as gocdnext would build it at boot."""
    backend = str(setting.get("backend", "")).lower()
    creds = credentials or {}
    if backend == "filesystem":
        # gocdnext honours only the backend here; the root comes from its environment
        return StoreLocation(url=f"file://{fs_root}")
    bucket = setting.get("bucket")
    if not bucket:
        raise ConfigError(f"the artifacts.storage setting names no bucket for {backend!r}")
    if backend == "s3":
        options: dict[str, Any] = {}
        if setting.get("endpoint"):
            options["endpoint_url"] = setting["endpoint"]
        if setting.get("region"):
            options["client_kwargs"] = {"region_name": setting["region"]}
        if setting.get("use_path_style"):
            options["config_kwargs"] = {"s3": {"addressing_style": "path"}}
        if creds.get("access_key") and creds.get("secret_key"):
            options["key"] = creds["access_key"]
            options["secret"] = creds["secret_key"]
        return StoreLocation(url=f"s3://{bucket}", options=options)
    if backend == "gcs":
        options = {}
        if setting.get("project_id"):
            options["project"] = setting["project_id"]
        if creds.get("service_account_json"):
            try:
                options["token"] = json.loads(creds["service_account_json"])
            except ValueError:
                raise ConfigError(
                    "the GCS service account in artifacts.storage is not JSON"
                ) from None
        return StoreLocation(url=f"gs://{bucket}", options=options)
    raise ConfigError(f"unknown artefact backend {backend!r} in the artifacts.storage setting")
