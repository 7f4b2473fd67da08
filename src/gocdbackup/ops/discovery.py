"""Finding gocdnext's artefact store from its own configuration."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from gocdbackup.errors import ConfigError
from gocdbackup.gocdnext.storage import DEFAULT_FS_ROOT, StoreLocation, store_location
from gocdbackup.ports import GocdnextData

log = logging.getLogger("gocdbackup.ops.discovery")


def discover_artifact_store(
    db: GocdnextData, decrypt: Callable[[bytes], bytes], *, fs_root: str = DEFAULT_FS_ROOT
) -> StoreLocation:
    """The store ``platform_settings['artifacts.storage']`` names, its credentials decrypted
    with the application key (``decrypt``).  Credentials stay in the returned value's hidden
    options; they are never logged or shown."""
    found = db.storage_setting()
    if found is None:
        raise ConfigError(
            "this gocdnext database has no artifacts.storage setting (the store is configured "
            "by environment): pass the store URL as artifacts=URL"
        )
    setting, sealed = found
    credentials = None
    if sealed is not None:
        try:
            credentials = json.loads(decrypt(sealed))
        except ValueError:
            raise ConfigError("the decrypted storage credentials are not a JSON object") from None
        if not isinstance(credentials, dict):
            raise ConfigError("the decrypted storage credentials are not a JSON object")
    location = store_location(setting, credentials, fs_root=fs_root)
    log.info("artefact store from platform_settings: %s", location.url)
    return location
