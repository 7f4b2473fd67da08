"""The values that describe one backup: where it was taken, what it holds, how big it is."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from attrs import field, frozen

from gocdbackup.model._validate import aware, hex64, non_negative
from gocdbackup.model.archive_layout import ArchiveLayout
from gocdbackup.model.kube import VolumeSnapshotInfo
from gocdbackup.model.project_secrets import KubeSecretsInfo
from gocdbackup.model.render import html_table, human_bytes, kv_table, to_pandas


class BackupStatus(enum.Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@frozen(kw_only=True)
class ChunkRef:
    """One content-defined piece of a stream, stored as one blob."""

    blob_id: str = field(validator=hex64)
    size_bytes: int = field(validator=non_negative)  # plaintext
    #: the blob's size in the repository (compressed, encrypted); verify checks it
    stored_bytes: int = field(default=0, validator=non_negative)


@frozen(kw_only=True)
class TableRows:
    """The exact row count of one table, read inside the backup's snapshot."""

    name: str  # schema-qualified, e.g. ``public.artifacts``
    rows: int = field(validator=non_negative)


@frozen(kw_only=True)
class ConsistencyPoint:
    """When and where the backup's view of gocdnext was taken.

    Everything in the backup (the dump, the row counts, later the artefact index) was read in
    one exported REPEATABLE READ snapshot; these fields name that snapshot.
    """

    snapshot_at: datetime = field(validator=aware)
    snapshot_id: str
    wal_lsn: str
    timeline: int
    server_version: str
    server_version_num: int
    goose_version: int | None = None
    #: the artefact store's marker (listing time / version ids); set by artefact backups
    store_marker: str | None = None


@frozen(kw_only=True)
class DatabaseInfo:
    """Facts about the backed-up database, recorded for restore and checks."""

    name: str
    owner: str
    encoding: str
    size_bytes: int = field(validator=non_negative)  # pg_database_size
    pg_dump_version: str
    #: bytes of table data (heap + TOAST, no indexes): about what a dump holds
    data_bytes: int = field(default=0, validator=non_negative)
    tables: tuple[TableRows, ...] = ()

    def table_rows(self) -> dict[str, int]:
        return {t.name: t.rows for t in self.tables}


@frozen(kw_only=True)
class Component:
    """One stream stored in the repository as a list of chunks (e.g. the database dump)."""

    kind: str  # "postgres_dump"
    size_bytes: int = field(validator=non_negative)  # plaintext length of the stream
    sha256: str = field(validator=hex64)  # of the whole plaintext stream
    chunks: tuple[ChunkRef, ...]
    #: bytes this backup actually wrote to the repository (compressed, encrypted)
    stored_bytes: int = field(default=0, validator=non_negative)
    #: plaintext bytes whose chunks were already in the repository (deduplicated)
    reused_bytes: int = field(default=0, validator=non_negative)
    #: for a dump: where its table of contents ends and each table's rows lie, so that a
    #: restore can load tables concurrently (None: restored as one stream)
    layout: ArchiveLayout | None = None

    def __attrs_post_init__(self) -> None:
        total = sum(c.size_bytes for c in self.chunks)
        if total != self.size_bytes:
            raise ValueError(f"chunks add up to {total} bytes, component says {self.size_bytes}")
        if self.layout is not None:
            self.layout.check_within(self.size_bytes)

    @property
    def dedup_ratio(self) -> float:
        """Share of this stream's bytes that were already stored (0.0 for a first backup)."""
        return self.reused_bytes / self.size_bytes if self.size_bytes else 0.0


@frozen(kw_only=True)
class Timings:
    started_at: datetime = field(validator=aware)
    finished_at: datetime = field(validator=aware)
    dump_seconds: float = field(default=0.0, validator=non_negative)

    @property
    def total_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


@frozen(kw_only=True)
class KeyCheck:
    """Which application key a backup was taken with (its fingerprint, never the key) and a
    sampled decrypt check of the database's sealed values under it."""

    fingerprint: str
    checked: int = 0  # sealed values tried (a sample of each encrypted column)
    opened: int = 0

    @property
    def ok(self) -> bool:
        return self.opened == self.checked

    def describe(self) -> str:
        return f"key {self.fingerprint} ({self.opened}/{self.checked} sampled values open)"


@frozen(kw_only=True)
class RunMark:
    """gocdnext's newest run at a backup's consistency point (what a drill finds again)."""

    id: str
    created_at: datetime


#: artefact outcomes as a backup line names them, in order
_ARTIFACT_LABELS = (
    ("copied", "copied"),
    ("reused", "reused"),
    ("missing", "missing"),
    ("expired_during_backup", "expired during the backup"),
    ("not_ready", "not ready"),
)


@frozen(kw_only=True)
class BackupSet:
    """One backup: a consistency point and the components taken at it."""

    id: str
    status: BackupStatus
    label: str = ""
    point: ConsistencyPoint
    database: DatabaseInfo
    components: tuple[Component, ...]
    timings: Timings
    tool_version: str = ""
    pin: str | None = None
    #: artefact counts by outcome (total, copied, reused, ...); empty without artefacts
    artifacts: tuple[tuple[str, int], ...] = ()
    #: the application key the backup was given, checked against a sample of sealed values
    key_check: KeyCheck | None = None
    #: the project Secrets of gocdnext's Kubernetes secrets backend the backup holds
    kube_secrets: KubeSecretsInfo | None = None
    #: the CSI VolumeSnapshot of the artefact claim taken with the backup (filesystem backend)
    volume_snapshot: VolumeSnapshotInfo | None = None
    #: gocdnext's newest run in the snapshot (None: no run, or not a gocdnext database)
    newest_run: RunMark | None = None
    #: an incremental physical backup: the backup it builds on (restored together with it)
    parent: str | None = None

    def component(self, kind: str) -> Component:
        for c in self.components:
            if c.kind == kind:
                return c
        raise KeyError(kind)

    @property
    def created_at(self) -> datetime:
        return self.point.snapshot_at

    @property
    def method(self) -> str:
        """ "physical" (a base backup of the whole server) or "logical" (a dump of one
        database)."""
        return "physical" if any(c.kind == "postgres_base" for c in self.components) else "logical"

    @property
    def size_bytes(self) -> int:
        """Logical size: the plaintext bytes of every component."""
        return sum(c.size_bytes for c in self.components)

    @property
    def stored_bytes(self) -> int:
        """What this backup added to the repository."""
        return sum(c.stored_bytes for c in self.components)

    @property
    def dedup_ratio(self) -> float:
        size = self.size_bytes
        return sum(c.reused_bytes for c in self.components) / size if size else 0.0

    def summary(self) -> dict[str, Any]:
        """The short, JSON-friendly description used by ``list`` and ``backup --json``."""
        return {
            "id": self.id,
            "status": self.status.value,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "database": self.database.name,
            "goose_version": self.point.goose_version,
            "size_bytes": self.size_bytes,
            "stored_bytes": self.stored_bytes,
            "dedup_ratio": round(self.dedup_ratio, 4),
            "pin": self.pin,
            "method": self.method,
            **({"parent": self.parent} if self.parent is not None else {}),
            **({"artifacts": dict(self.artifacts)} if self.artifacts else {}),
            **(
                {"key_fingerprint": self.key_check.fingerprint}
                if self.key_check is not None
                else {}
            ),
        }

    def table_rows(self) -> list[dict[str, Any]]:
        """The exact row count of every table, taken in the snapshot
        (``pandas.DataFrame(backup.table_rows())``)."""
        return [{"table": t.name, "rows": t.rows} for t in self.database.tables]

    def to_pandas(self) -> Any:
        """:meth:`table_rows` as a DataFrame (needs the ``notebook`` extra)."""
        return to_pandas(self.table_rows())

    def describe_artifacts(self) -> str:
        """``copied 10, reused 300, missing 3`` (the objects the snapshot's rows reference)."""
        counts = dict(self.artifacts)
        parts = [
            f"{label} {counts[name]:,}"
            for name, label in _ARTIFACT_LABELS
            if counts.get(name) or name in ("copied", "reused")
        ]
        return ", ".join(parts)

    def describe(self) -> str:
        """One sentence for people: what was taken, its size and what it added."""
        goose = (
            "no goose version"
            if self.point.goose_version is None
            else f"goose {self.point.goose_version}"
        )
        text = (
            f"backup {self.id} {self.status.value}: database {self.database.name!r} ({goose}, "
            f"{len(self.database.tables)} tables, {sum(t.rows for t in self.database.tables):,} "
            f"rows), {human_bytes(self.size_bytes)}, {human_bytes(self.stored_bytes)} new in "
            f"the repository (dedup {self.dedup_ratio:.0%})"
        )
        if self.artifacts:
            text += f"; artefacts: {self.describe_artifacts()}"
        if self.key_check is not None:
            text += f"; {self.key_check.describe()}"
        if self.kube_secrets is not None:
            text += f"; {self.kube_secrets.describe()}"
        if self.volume_snapshot is not None:
            text += f"; {self.volume_snapshot.describe()}"
        return text

    def __repr__(self) -> str:
        goose = "-" if self.point.goose_version is None else self.point.goose_version
        return (
            f"<BackupSet {self.id} {self.status.value} {self.database.name!r} "
            f"at {self.created_at:%Y-%m-%d %H:%M:%S}Z goose {goose}, "
            f"{human_bytes(self.size_bytes)}, stored {human_bytes(self.stored_bytes)} "
            f"(dedup {self.dedup_ratio:.0%})"
            + (f", artefacts {self.describe_artifacts()}" if self.artifacts else "")
            + ">"
        )

    def _repr_html_(self) -> str:
        s = self.summary()
        if self.artifacts:
            s["artifacts"] = self.describe_artifacts()
        s["size_bytes"] = human_bytes(self.size_bytes)
        s["stored_bytes"] = human_bytes(self.stored_bytes)
        s["tables"] = len(self.database.tables)
        s["server"] = self.point.server_version
        return kv_table(s.items(), caption=f"Backup {self.id}")


class BackupList(list[BackupSet]):
    """A list of backups that also shows itself as a table in Jupyter."""

    def rows(self) -> list[dict[str, Any]]:
        return [b.summary() for b in self]

    def to_pandas(self) -> Any:
        return to_pandas(self.rows())

    def _repr_html_(self) -> str:
        return html_table(self.rows(), caption=f"{len(self)} backup(s)")
