"""The artefact index: every object gocdnext's database referenced at the consistency point, and
what the backup did with it.  Pure values and (de)serialisation as JSON lines."""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from attrs import field, frozen

from gocdbackup.errors import UnsupportedFormat
from gocdbackup.model.backup import ChunkRef
from gocdbackup.model.render import html_table


class ObjectKind(enum.Enum):
    ARTIFACT = "artifact"  # artifacts.storage_key: run/<run_id>/job/<job_run_id>/<uuid>
    CACHE = "cache"  # caches.storage_key: cache/<project_id>/<sha256(key)>
    LOG_ARCHIVE = "log_archive"  # job_runs.logs_archive_uri: logs/<job_run_id>.log.gz


class Outcome(enum.Enum):
    COPIED = "copied"  # read from the store during this backup
    REUSED = "reused"  # the same content was stored by an earlier backup: not read again
    NOT_READY = "not_ready"  # a pending or deleting row: recorded, not copied
    EXPIRED = "expired_during_backup"  # gone from the store and retired by gocdnext meanwhile
    MISSING = "missing"  # a ready row whose object is absent for no known reason

    @property
    def stored(self) -> bool:
        return self in (Outcome.COPIED, Outcome.REUSED)


@frozen(kw_only=True)
class ObjectRef:
    """One object a row references, as the database recorded it in the snapshot."""

    kind: ObjectKind
    key: str
    row_id: str
    status: str  # artifacts: pending/ready/deleting; caches: pending/ready; logs: "ready"
    size_bytes: int | None = None  # None where gocdnext records none (log archives)
    sha256: str = ""  # lowercase hex, "" where gocdnext records none
    project_id: str | None = None
    pipeline_id: str | None = None
    run_id: str | None = None

    @property
    def wanted(self) -> bool:
        """Should the backup copy it? Ready artefacts and caches, and every stamped log."""
        return self.status == "ready"


@frozen(kw_only=True)
class ArtifactEntry:
    ref: ObjectRef
    outcome: Outcome
    chunks: tuple[ChunkRef, ...] = ()
    size_bytes: int = 0  # of the stored copy
    sha256: str = ""  # of the stored copy
    modified_at: datetime | None = None  # the store's last-write time of the copied object
    #: the store's version id of the copied object (versioned buckets, GCS generations)
    version: str | None = None
    finding: str = ""  # e.g. "content differs from the database's SHA-256"

    def to_dict(self) -> dict[str, Any]:
        r = self.ref
        return {
            "kind": r.kind.value,
            "key": r.key,
            "row_id": r.row_id,
            "status": r.status,
            "db_size": r.size_bytes,
            "db_sha256": r.sha256,
            "project_id": r.project_id,
            "pipeline_id": r.pipeline_id,
            "run_id": r.run_id,
            "outcome": self.outcome.value,
            "size": self.size_bytes,
            "sha256": self.sha256,
            "modified_at": self.modified_at.isoformat() if self.modified_at else None,
            "finding": self.finding,
            **({"version": self.version} if self.version else {}),
            "chunks": [[c.blob_id, c.size_bytes, c.stored_bytes] for c in self.chunks],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ArtifactEntry:
        ref = ObjectRef(
            kind=ObjectKind(d["kind"]),
            key=str(d["key"]),
            row_id=str(d["row_id"]),
            status=str(d["status"]),
            size_bytes=d["db_size"],
            sha256=str(d["db_sha256"]),
            project_id=d.get("project_id"),
            pipeline_id=d.get("pipeline_id"),
            run_id=d.get("run_id"),
        )
        modified = d.get("modified_at")
        return cls(
            ref=ref,
            outcome=Outcome(d["outcome"]),
            size_bytes=int(d["size"]),
            sha256=str(d["sha256"]),
            finding=str(d.get("finding", "")),
            version=d.get("version"),
            modified_at=datetime.fromisoformat(modified) if modified else None,
            chunks=tuple(
                ChunkRef(blob_id=str(b), size_bytes=int(n), stored_bytes=int(s))
                for b, n, s in d["chunks"]
            ),
        )


@frozen(kw_only=True)
class ArtifactIndex:
    entries: tuple[ArtifactEntry, ...] = field(default=())

    def counts(self) -> dict[str, int]:
        """``total`` plus one count per outcome (the shape ``backup --json`` reports)."""
        c = Counter(e.outcome.value for e in self.entries)
        out = {"total": len(self.entries)}
        out.update({o.value: c.get(o.value, 0) for o in Outcome})
        out["bytes"] = sum(e.size_bytes for e in self.entries if e.outcome.stored)
        out["copied_bytes"] = sum(e.size_bytes for e in self.entries if e.outcome is Outcome.COPIED)
        return out

    def findings(self) -> list[str]:
        return [f"{e.ref.key}: {e.finding}" for e in self.entries if e.finding]

    def chunks(self) -> list[ChunkRef]:
        """Every chunk the stored objects need, each blob once."""
        return list({c.blob_id: c for e in self.entries for c in e.chunks}.values())

    def by_content(self) -> dict[tuple[str, str, int], ArtifactEntry]:
        """Stored entries by (key, SHA-256 or modification time, size): what a later backup
        may reuse without reading the object again."""
        out = {}
        for e in self.entries:
            if e.outcome.stored:
                out[content_key(e.ref.key, e.ref.sha256, e.modified_at, e.size_bytes)] = e
        return out

    def immutable(self) -> dict[str, ArtifactEntry]:
        """Stored artefacts (not caches or log archives) by key, whose stored copy matched the
        SHA-256 and size the database recorded.  gocdnext writes an artefact once, under a key
        with a fresh UUID, so a later row with the same key, SHA-256 and size is this very
        object: a later backup reuses it without looking at the store again."""
        return {
            e.ref.key: e
            for e in self.entries
            if e.outcome.stored
            and e.ref.kind is ObjectKind.ARTIFACT
            and not e.finding
            and e.ref.sha256
            and e.sha256 == e.ref.sha256
        }

    def versions(self) -> int:
        """How many stored objects carry the store's version id."""
        return sum(1 for e in self.entries if e.outcome.stored and e.version)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "key": e.ref.key,
                "kind": e.ref.kind.value,
                "outcome": e.outcome.value,
                "size_bytes": e.size_bytes,
                "finding": e.finding,
            }
            for e in self.entries
        ]

    def _repr_html_(self) -> str:
        return html_table(self.rows(), caption=f"{len(self.entries)} objects")

    def to_jsonl(self) -> bytes:
        return b"".join(
            json.dumps(e.to_dict(), sort_keys=True, separators=(",", ":")).encode() + b"\n"
            for e in self.entries
        )

    @classmethod
    def from_jsonl(cls, raw: bytes) -> ArtifactIndex:
        try:
            return cls(
                entries=tuple(
                    ArtifactEntry.from_dict(json.loads(line)) for line in raw.splitlines() if line
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise UnsupportedFormat("the artefact index is malformed") from exc


def content_key(
    key: str, sha256: str, modified_at: datetime | None, size: int
) -> tuple[str, str, int]:
    """What must be equal for an earlier copy to stand for the object in the store now: the
    key, the database's SHA-256 (if any), the store's last-write time and the size.  gocdnext
    never rewrites an artefact, so in practice only caches and log archives (overwritten in
    place) and objects restored or migrated (new write times) are read again."""
    written = modified_at.isoformat() if modified_at else "?"
    return (key, f"{sha256}@{written}", size)


@frozen(kw_only=True)
class ArtifactRestore:
    written: int
    skipped: int  # already present with the right content
    bytes_written: int
    #: of ``written``: made current again from the bucket's own versions (no bytes copied)
    from_versions: int = 0

    def summary(self) -> dict[str, int]:
        return {
            "written": self.written,
            "skipped": self.skipped,
            "bytes_written": self.bytes_written,
            "from_versions": self.from_versions,
        }
