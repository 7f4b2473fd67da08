"""``config.json``: the repository's identity, format, chunking parameters and key slots."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from attrs import frozen

from gocdbackup.errors import UnsupportedFormat
from gocdbackup.repository.chunker import ChunkerParams
from gocdbackup.repository.keys import KeySlot

REPO_FORMAT_VERSION = 1
KIND = "gocdbackup.repository"


@frozen(kw_only=True)
class RepoConfig:
    repo_id: str
    created_at: datetime
    chunker: ChunkerParams
    compression_level: int
    key_slots: tuple[KeySlot, ...]
    format_version: int = REPO_FORMAT_VERSION

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "kind": KIND,
            "format_version": self.format_version,
            "repo_id": self.repo_id,
            "created_at": self.created_at.isoformat(),
            "chunker": {
                "algorithm": "fastcdc2020",
                "avg_size": self.chunker.avg_size,
                "min_size": self.chunker.min_size,
                "max_size": self.chunker.max_size,
            },
            "compression": {"algorithm": "zstd", "level": self.compression_level},
            "encryption": {"algorithm": "aes-256-gcm", "blob_id": "hmac-sha256"},
            "key_slots": [s.to_dict() for s in self.key_slots],
        }
        return json.dumps(doc, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> RepoConfig:
        try:
            d = json.loads(raw)
            if d.get("kind") != KIND:
                raise UnsupportedFormat("config.json is not a gocdbackup repository config")
            version = d["format_version"]
            if version > REPO_FORMAT_VERSION:
                raise UnsupportedFormat(
                    f"repository format {version} is newer than this gocdbackup understands "
                    f"({REPO_FORMAT_VERSION}); upgrade gocdbackup"
                )
            c = d["chunker"]
            return cls(
                repo_id=str(d["repo_id"]),
                created_at=datetime.fromisoformat(d["created_at"]),
                chunker=ChunkerParams(
                    avg_size=int(c["avg_size"]),
                    min_size=int(c["min_size"]),
                    max_size=int(c["max_size"]),
                ),
                compression_level=int(d["compression"]["level"]),
                key_slots=tuple(KeySlot.from_dict(s) for s in d["key_slots"]),
                format_version=int(version),
            )
        except UnsupportedFormat:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UnsupportedFormat("config.json is malformed") from exc
