"""Shards of an artefact backup, the pure core: which shard a key belongs to (a stable hash,
so any worker can take any shard, and a rerun takes the same keys), the shard plan a detached
backup leaves in the repository, and the refs a shard carries."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from attrs import frozen

from gocdbackup.errors import ConfigError, UnsupportedFormat
from gocdbackup.model.artifacts import ArtifactEntry, ArtifactIndex, ObjectRef, Outcome
from gocdbackup.model.backup import BackupSet
from gocdbackup.model.manifest import Manifest

#: at most this many shards (an Indexed Job's completions, worker processes)
MAX_SHARDS = 1024


def shard_of(key: str, shards: int) -> int:
    """The shard ``key`` belongs to, 0 ≤ n < ``shards``: the same on every machine and run."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def split(refs: Iterable[ObjectRef], shards: int) -> list[list[ObjectRef]]:
    """``refs`` by shard, each shard's in the order given."""
    check_shards(shards)
    parts: list[list[ObjectRef]] = [[] for _ in range(shards)]
    for ref in refs:
        parts[shard_of(ref.key, shards)].append(ref)
    return parts


def check_shards(shards: int) -> None:
    if not 1 <= shards <= MAX_SHARDS:
        raise ConfigError(f"shards must be between 1 and {MAX_SHARDS}, not {shards}")


def refs_jsonl(refs: Sequence[ObjectRef]) -> bytes:
    """A shard's refs as index lines (their outcome not known yet)."""
    return ArtifactIndex(
        entries=tuple(ArtifactEntry(ref=r, outcome=Outcome.NOT_READY) for r in refs)
    ).to_jsonl()


def refs_from_jsonl(raw: bytes) -> list[ObjectRef]:
    return [e.ref for e in ArtifactIndex.from_jsonl(raw).entries]


@frozen(kw_only=True)
class ShardPlan:
    """A detached backup waiting for its shards: the backup as far as it got (the database's
    dump, and one component of refs per shard, ``shard_refs``), where the artefacts are, and
    when the copy was planned (the store's side of the consistency point)."""

    backup: BackupSet
    shards: int
    store: str
    listed_at: datetime
    fail_on_missing: bool = False

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "manifest": Manifest(backup=self.backup).to_dict(),
                "shards": self.shards,
                "store": self.store,
                "listed_at": self.listed_at.isoformat(),
                "fail_on_missing": self.fail_on_missing,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ShardPlan:
        try:
            d: dict[str, Any] = json.loads(raw)
            return cls(
                backup=Manifest.from_dict(d["manifest"]).backup,
                shards=int(d["shards"]),
                store=str(d["store"]),
                listed_at=datetime.fromisoformat(d["listed_at"]),
                fail_on_missing=bool(d.get("fail_on_missing", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UnsupportedFormat(f"malformed shard plan: {exc}") from exc
