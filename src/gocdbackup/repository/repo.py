"""The backup repository on any :class:`~gocdbackup.ports.ObjectStore`.

Layout::

    config.json               format, repo id, chunker, key slots
    data/<aa>/<blob-id>       content-addressed, compressed, encrypted blobs
    backups/<backup-id>.json  sealed manifests, written last: a backup exists iff its manifest does
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from gocdbackup.context import Clock
from gocdbackup.errors import (
    BackupNotFound,
    ConfigError,
    IntegrityError,
    ObjectMissing,
    RepositoryExists,
    RepositoryNotFound,
    UnsupportedFormat,
    WrongPassword,
)
from gocdbackup.model.gc import BlobInfo
from gocdbackup.model.manifest import Manifest
from gocdbackup.ports import ObjectStore
from gocdbackup.repository.chunker import ChunkerParams
from gocdbackup.repository.codec import BlobCodec
from gocdbackup.repository.config import RepoConfig
from gocdbackup.repository.keys import DEFAULT_SCRYPT_N, MasterKeys, unwrap_keys, wrap_keys
from gocdbackup.repository.locks import DEFAULT_TTL, Kind, RepositoryLock

log = logging.getLogger("gocdbackup.repository")

CONFIG_KEY = "config.json"
DATA_PREFIX = "data/"
BACKUPS_PREFIX = "backups/"
#: drill reports and verification results, kept for ``status`` and the metrics
RECORDS_PREFIX = "records/"
_ENVELOPE_KIND = "gocdbackup.sealed-manifest"


def blob_key(blob_id: str) -> str:
    return f"{DATA_PREFIX}{blob_id[:2]}/{blob_id}"


def manifest_key(backup_id: str) -> str:
    return f"{BACKUPS_PREFIX}{backup_id}.json"


class Repository:
    """An opened (unlocked) repository. Create with :meth:`init` or :meth:`open`."""

    def __init__(
        self, store: ObjectStore, config: RepoConfig, keys: MasterKeys, slot_id: str
    ) -> None:
        self.store = store
        self.config = config
        self.codec = BlobCodec(keys, level=config.compression_level)
        self.master_keys = keys
        #: the key slot this repository was opened with
        self.slot_id = slot_id
        #: lease settings for :meth:`lock`
        self.lock_ttl = DEFAULT_TTL
        self.lock_wait = timedelta(0)

    def __repr__(self) -> str:
        return f"<Repository {self.store.url} id={self.config.repo_id}>"

    @property
    def chunker(self) -> ChunkerParams:
        return self.config.chunker

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        store: ObjectStore,
        passphrase: bytes,
        *,
        now: datetime,
        chunker: ChunkerParams | None = None,
        scrypt_n: int = DEFAULT_SCRYPT_N,
        compression_level: int = 3,
    ) -> Repository:
        if not passphrase:
            raise ConfigError(
                "a repository passphrase is required (GOCDBACKUP_PASSWORD or password_file=FILE)"
            )
        if next(iter(store.list("")), None) is not None:
            raise RepositoryExists(
                f"{store.url} is not empty; a new repository needs an empty location"
            )
        keys = MasterKeys.generate()
        slot = wrap_keys(keys, passphrase, label="initial", created_at=now, n=scrypt_n)
        config = RepoConfig(
            repo_id=os.urandom(8).hex(),
            created_at=now,
            chunker=chunker or ChunkerParams(),
            compression_level=compression_level,
            key_slots=(slot,),
        )
        store.write(CONFIG_KEY, config.to_json())
        log.info("initialised repository %s (id %s)", store.url, config.repo_id)
        return cls(store, config, keys, slot.id)

    @classmethod
    def open(cls, store: ObjectStore, passphrase: bytes) -> Repository:
        try:
            raw = store.read(CONFIG_KEY)
        except ObjectMissing:
            raise RepositoryNotFound(
                f"no gocdbackup repository at {store.url} (run 'gocdbackup init' first)"
            ) from None
        config = RepoConfig.from_json(raw)
        for slot in config.key_slots:
            keys = unwrap_keys(slot, passphrase)
            if keys is not None:
                return cls(store, config, keys, slot.id)
        raise WrongPassword(f"wrong passphrase for the repository at {store.url}")

    def lock(self, kind: Kind, operation: str, clock: Clock) -> RepositoryLock:
        """A lease on this repository (use as a context manager)."""
        return RepositoryLock(
            self.store, kind, operation, clock, ttl=self.lock_ttl, wait=self.lock_wait
        )

    def write_config(self, config: RepoConfig) -> None:
        """Replace ``config.json`` (atomically) and use the new config from now on."""
        self.store.write(CONFIG_KEY, config.to_json())
        self.config = config

    # -- blobs -------------------------------------------------------------------------------

    def blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob with its size and write time, in one listing pass, streamed (the
        listing is never held in memory)."""
        for info in self.store.scan(DATA_PREFIX):
            name = info.key.rsplit("/", 1)[-1]
            if len(name) == 64 and info.key == blob_key(name):
                yield BlobInfo(
                    blob_id=name, size_bytes=info.size_bytes, modified_at=info.modified_at
                )

    def delete_blob(self, blob_id: str) -> None:
        self.store.delete(blob_key(blob_id))

    def delete_blobs(self, blob_ids: Sequence[str]) -> None:
        """Delete many blobs in as few requests as the store allows."""
        self.store.delete_many([blob_key(b) for b in blob_ids])

    def blob_sizes(self) -> dict[str, int]:
        """Every stored blob id with its stored size, in one listing pass."""
        return {b.blob_id: b.size_bytes for b in self.blobs()}

    def put_blob(self, blob_id: str, plaintext: bytes) -> int:
        """Seal and store; the stored size."""
        sealed = self.codec.seal(blob_id, plaintext)
        self.store.write(blob_key(blob_id), sealed)
        return len(sealed)

    def get_blob(self, blob_id: str) -> bytes:
        try:
            stored = self.store.read(blob_key(blob_id))
        except ObjectMissing:
            raise IntegrityError(f"blob {blob_id[:12]}… is missing from the repository") from None
        return self.codec.open(blob_id, stored)

    # -- manifests ---------------------------------------------------------------------------

    def write_manifest(self, manifest: Manifest) -> None:
        """The commit point of a backup."""
        backup_id = manifest.backup.id
        sealed = self.codec.seal_manifest(backup_id, manifest.to_json())
        envelope = {
            "kind": _ENVELOPE_KIND,
            "format_version": 1,
            "id": backup_id,
            "sealed": base64.b64encode(sealed).decode(),
        }
        self.store.write(manifest_key(backup_id), json.dumps(envelope).encode())

    def read_manifest(self, backup_id: str) -> Manifest:
        try:
            raw = self.store.read(manifest_key(backup_id))
        except ObjectMissing:
            raise BackupNotFound(backup_id) from None
        try:
            envelope = json.loads(raw)
            if envelope.get("kind") != _ENVELOPE_KIND or envelope.get("id") != backup_id:
                raise UnsupportedFormat(
                    f"{manifest_key(backup_id)} is not a manifest of {backup_id}"
                )
            sealed = base64.b64decode(envelope["sealed"], validate=True)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UnsupportedFormat(f"{manifest_key(backup_id)} is malformed") from exc
        manifest = Manifest.from_json(self.codec.open_manifest(backup_id, sealed))
        if manifest.backup.id != backup_id:
            raise IntegrityError(f"manifest {backup_id} names another backup")
        return manifest

    # -- records (drills, verifications): small sealed documents, newest last ----------------

    def write_record(self, kind: str, record_id: str, document: bytes) -> None:
        """Keep ``document`` as record ``record_id`` of ``kind`` (e.g. ``drills``), sealed like
        a manifest."""
        name = f"{kind}/{record_id}"
        self.store.write(f"{RECORDS_PREFIX}{name}", self.codec.seal_manifest(name, document))

    def records(self, kind: str) -> list[bytes]:
        """Every record of ``kind``, in the order of their ids (unreadable ones skipped)."""
        out = []
        prefix = f"{RECORDS_PREFIX}{kind}/"
        for info in sorted(self.store.list(prefix), key=lambda i: i.key):
            name = info.key[len(RECORDS_PREFIX) :]
            try:
                out.append(self.codec.open_manifest(name, self.store.read(info.key)))
            except (IntegrityError, ObjectMissing) as exc:
                log.warning("skipping record %s: %s", name, exc)
        return out

    def read_record(self, kind: str, record_id: str) -> bytes | None:
        """Record ``record_id`` of ``kind``, or None if there is none."""
        name = f"{kind}/{record_id}"
        try:
            sealed = self.store.read(f"{RECORDS_PREFIX}{name}")
        except ObjectMissing:
            return None
        return self.codec.open_manifest(name, sealed)

    def record_ids(self, kind: str) -> list[str]:
        """The ids of every record of ``kind``, sorted (nothing is read but the listing)."""
        prefix = f"{RECORDS_PREFIX}{kind}/"
        return sorted(info.key[len(prefix) :] for info in self.store.list(prefix))

    def delete_record(self, kind: str, record_id: str) -> None:
        self.store.delete(f"{RECORDS_PREFIX}{kind}/{record_id}")

    def delete_manifest(self, backup_id: str) -> None:
        """Forget a backup: its manifest goes, its blobs stay for garbage collection."""
        self.store.delete(manifest_key(backup_id))

    def backup_ids(self) -> list[str]:
        ids = []
        for info in self.store.list(BACKUPS_PREFIX):
            name = info.key[len(BACKUPS_PREFIX) :]
            if name.endswith(".json") and "/" not in name:
                ids.append(name[: -len(".json")])
        return sorted(ids)

    def manifests(self) -> Iterator[Manifest]:
        for backup_id in self.backup_ids():
            yield self.read_manifest(backup_id)
