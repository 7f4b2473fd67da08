"""The manifest: the explicit, versioned JSON form of a :class:`BackupSet`.

No pickle and no generic (de)serialiser: every field is written and read here, so the format is
reviewable and stable.  ``from_dict`` checks types and raises :class:`UnsupportedFormat` for
anything malformed or from a newer format version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from attrs import frozen

from gocdbackup.errors import UnsupportedFormat
from gocdbackup.model.archive_layout import ArchiveLayout, DataBlock
from gocdbackup.model.backup import (
    BackupSet,
    BackupStatus,
    ChunkRef,
    Component,
    ConsistencyPoint,
    DatabaseInfo,
    KeyCheck,
    RunMark,
    TableRows,
    Timings,
)
from gocdbackup.model.kube import VolumeSnapshotInfo
from gocdbackup.model.project_secrets import KubeSecretsInfo

FORMAT_VERSION = 1
KIND = "gocdbackup.manifest"

T = TypeVar("T")


@frozen(kw_only=True)
class Manifest:
    """A backup set as stored in ``backups/<id>.json``."""

    backup: BackupSet
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        b = self.backup
        return {
            "kind": KIND,
            "format_version": self.format_version,
            "id": b.id,
            "status": b.status.value,
            "label": b.label,
            "pin": b.pin,
            "tool_version": b.tool_version,
            "artifacts": dict(b.artifacts) if b.artifacts else None,
            "key": None
            if b.key_check is None
            else {
                "fingerprint": b.key_check.fingerprint,
                "checked": b.key_check.checked,
                "opened": b.key_check.opened,
            },
            **(
                {}
                if b.kube_secrets is None
                else {
                    "kube_secrets": {
                        "namespace": b.kube_secrets.namespace,
                        "template": b.kube_secrets.template,
                        "count": b.kube_secrets.count,
                    }
                }
            ),
            **(
                {}
                if b.volume_snapshot is None
                else {"volume_snapshot": b.volume_snapshot.to_dict()}
            ),
            **(
                {}
                if b.newest_run is None
                else {
                    "newest_run": {
                        "id": b.newest_run.id,
                        "created_at": b.newest_run.created_at.isoformat(),
                    }
                }
            ),
            **({} if b.parent is None else {"parent": b.parent}),
            "point": _point_to_dict(b.point),
            "database": _db_to_dict(b.database),
            "components": [_component_to_dict(c) for c in b.components],
            "timings": {
                "started_at": b.timings.started_at.isoformat(),
                "finished_at": b.timings.finished_at.isoformat(),
                "dump_seconds": b.timings.dump_seconds,
            },
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        try:
            return cls(backup=_backup_from_dict(data), format_version=FORMAT_VERSION)
        except UnsupportedFormat:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UnsupportedFormat(f"malformed manifest: {_describe(exc)}") from exc

    @classmethod
    def from_json(cls, raw: bytes | str) -> Manifest:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UnsupportedFormat("malformed manifest: not JSON") from exc
        return cls.from_dict(data)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _backup_from_dict(d: Any) -> BackupSet:
    d = _mapping(d, "manifest")
    if d.get("kind") != KIND:
        raise UnsupportedFormat("not a gocdbackup manifest")
    version = d.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise UnsupportedFormat("malformed manifest: format_version is not an integer")
    if version > FORMAT_VERSION:
        raise UnsupportedFormat(
            f"manifest format {version} is newer than this gocdbackup understands "
            f"({FORMAT_VERSION}); upgrade gocdbackup"
        )
    if version < 1:
        raise UnsupportedFormat(f"malformed manifest: format_version {version}")
    t = _mapping(d["timings"], "timings")
    return BackupSet(
        id=_get(d, "id", str),
        status=BackupStatus(_get(d, "status", str)),
        label=_get(d, "label", str),
        pin=_opt(d, "pin", str),
        tool_version=_get(d, "tool_version", str),
        artifacts=tuple(
            (str(k), _check(v, int, "artifact count"))
            for k, v in sorted(_mapping(d.get("artifacts") or {}, "artifacts").items())
        ),
        key_check=_key_from_dict(d.get("key")),
        kube_secrets=_kube_secrets_from_dict(d.get("kube_secrets")),
        volume_snapshot=_snapshot_from_dict(d.get("volume_snapshot")),
        newest_run=_run_from_dict(d.get("newest_run")),
        parent=_opt(d, "parent", str),
        point=_point_from_dict(_mapping(d["point"], "point")),
        database=_db_from_dict(_mapping(d["database"], "database")),
        components=tuple(
            _component_from_dict(_mapping(c, "component")) for c in _get(d, "components", list)
        ),
        timings=Timings(
            started_at=_time(_get(t, "started_at", str)),
            finished_at=_time(_get(t, "finished_at", str)),
            dump_seconds=float(_get(t, "dump_seconds", (int, float))),
        ),
    )


def _key_from_dict(value: Any) -> KeyCheck | None:
    if value is None:
        return None
    k = _mapping(value, "key")
    return KeyCheck(
        fingerprint=_get(k, "fingerprint", str),
        checked=_get(k, "checked", int),
        opened=_get(k, "opened", int),
    )


def _kube_secrets_from_dict(value: Any) -> KubeSecretsInfo | None:
    if value is None:
        return None
    k = _mapping(value, "kube_secrets")
    return KubeSecretsInfo(
        namespace=_get(k, "namespace", str),
        template=_get(k, "template", str),
        count=_get(k, "count", int),
    )


def _run_from_dict(value: Any) -> RunMark | None:
    if value is None:
        return None
    v = _mapping(value, "newest_run")
    return RunMark(id=_get(v, "id", str), created_at=_time(_get(v, "created_at", str)))


def _snapshot_from_dict(value: Any) -> VolumeSnapshotInfo | None:
    if value is None:
        return None
    v = _mapping(value, "volume_snapshot")
    return VolumeSnapshotInfo(**{k: _get(v, k, str) for k in _SNAPSHOT_FIELDS})


_SNAPSHOT_FIELDS = ("namespace", "name", "claim", "content", "restore_size", "snapshot_class")


def _point_to_dict(p: ConsistencyPoint) -> dict[str, Any]:
    return {
        "snapshot_at": p.snapshot_at.isoformat(),
        "snapshot_id": p.snapshot_id,
        "wal_lsn": p.wal_lsn,
        "timeline": p.timeline,
        "server_version": p.server_version,
        "server_version_num": p.server_version_num,
        "goose_version": p.goose_version,
        "store_marker": p.store_marker,
    }


def _point_from_dict(d: Mapping[str, Any]) -> ConsistencyPoint:
    return ConsistencyPoint(
        snapshot_at=_time(_get(d, "snapshot_at", str)),
        snapshot_id=_get(d, "snapshot_id", str),
        wal_lsn=_get(d, "wal_lsn", str),
        timeline=_get(d, "timeline", int),
        server_version=_get(d, "server_version", str),
        server_version_num=_get(d, "server_version_num", int),
        goose_version=_opt(d, "goose_version", int),
        store_marker=_opt(d, "store_marker", str),
    )


def _db_to_dict(db: DatabaseInfo) -> dict[str, Any]:
    return {
        "name": db.name,
        "owner": db.owner,
        "encoding": db.encoding,
        "size_bytes": db.size_bytes,
        "data_bytes": db.data_bytes,
        "pg_dump_version": db.pg_dump_version,
        "tables": [[t.name, t.rows] for t in db.tables],
    }


def _db_from_dict(d: Mapping[str, Any]) -> DatabaseInfo:
    tables = [
        TableRows(name=name, rows=rows) for name, rows in _pairs(d, "tables", "table name", "rows")
    ]
    return DatabaseInfo(
        name=_get(d, "name", str),
        owner=_get(d, "owner", str),
        encoding=_get(d, "encoding", str),
        size_bytes=_get(d, "size_bytes", int),
        data_bytes=_get(d, "data_bytes", int),
        pg_dump_version=_get(d, "pg_dump_version", str),
        tables=tuple(tables),
    )


def _component_to_dict(c: Component) -> dict[str, Any]:
    return {
        "kind": c.kind,
        "size_bytes": c.size_bytes,
        "sha256": c.sha256,
        "stored_bytes": c.stored_bytes,
        "reused_bytes": c.reused_bytes,
        # compact: [blob_id, size, stored size]; a large dump has thousands of chunks
        "chunks": [[ch.blob_id, ch.size_bytes, ch.stored_bytes] for ch in c.chunks],
        **({} if c.layout is None else {"layout": _layout_to_dict(c.layout)}),
    }


def _layout_to_dict(layout: ArchiveLayout) -> dict[str, Any]:
    return {
        "toc_end": layout.toc_end,
        "int_size": layout.int_size,
        # compact: [dump id, start, end]
        "blocks": [[b.dump_id, b.start, b.end] for b in layout.blocks],
    }


def _layout_from_dict(value: Any) -> ArchiveLayout | None:
    if value is None:
        return None
    d = _mapping(value, "layout")
    blocks = []
    for item in _get(d, "blocks", list):
        if not (isinstance(item, list) and len(item) == 3):
            raise ValueError("layout blocks must be [dump id, start, end]")
        dump_id, start, end = (_check(v, int, "layout block") for v in item)
        blocks.append(DataBlock(dump_id=dump_id, start=start, end=end))
    return ArchiveLayout(
        toc_end=_get(d, "toc_end", int), int_size=_get(d, "int_size", int), blocks=tuple(blocks)
    )


def _component_from_dict(d: Mapping[str, Any]) -> Component:
    chunks = [
        ChunkRef(blob_id=blob_id, size_bytes=size, stored_bytes=stored)
        for blob_id, size, stored in _triples(d, "chunks")
    ]
    return Component(
        kind=_get(d, "kind", str),
        size_bytes=_get(d, "size_bytes", int),
        sha256=_get(d, "sha256", str),
        chunks=tuple(chunks),
        stored_bytes=_get(d, "stored_bytes", int),
        reused_bytes=_get(d, "reused_bytes", int),
        layout=_layout_from_dict(d.get("layout")),
    )


# -- typed field access ------------------------------------------------------------------------


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UnsupportedFormat(f"malformed manifest: {what} is not an object")
    return value


def _check(value: Any, typ: type[T] | tuple[type, ...], what: str) -> T:
    if (isinstance(value, bool) and typ is not bool) or not isinstance(value, typ):
        raise TypeError(f"{what} has the wrong type")
    return value  # type: ignore[return-value]


def _pairs(d: Mapping[str, Any], key: str, first: str, second: str) -> list[tuple[str, int]]:
    """A list of ``[str, int]`` pairs (the compact form of tables and chunks)."""
    out = []
    for item in _get(d, key, list):
        if not (isinstance(item, list) and len(item) == 2):
            raise ValueError(f"{key} entries must be [{first}, {second}]")
        out.append((_check(item[0], str, first), _check(item[1], int, second)))
    return out


def _triples(d: Mapping[str, Any], key: str) -> list[tuple[str, int, int]]:
    """``[blob id, size, stored size]`` entries."""
    out = []
    for item in _get(d, key, list):
        if not (isinstance(item, list) and len(item) == 3):
            raise ValueError(f"{key} entries must be [blob id, size, stored size]")
        out.append(
            (
                _check(item[0], str, "blob id"),
                _check(item[1], int, "size"),
                _check(item[2], int, "stored size"),
            )
        )
    return out


def _get(d: Mapping[str, Any], key: str, typ: type[T] | tuple[type, ...]) -> T:
    return _check(d[key], typ, key)


def _opt(d: Mapping[str, Any], key: str, typ: type[T]) -> T | None:
    value = d.get(key)
    return None if value is None else _check(value, typ, key)


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamps must carry a UTC offset")
    return parsed


#: one component as JSON, for records that keep components outside a manifest (shards)
component_to_dict = _component_to_dict
component_from_dict = _component_from_dict
