"""A versioned bucket at a point in time, the pure core: every version (and delete marker) of a
key, which one was current at an instant, and the plan that makes the bucket look as it did
then (:func:`plan_rollback`), with an id a ``--confirm`` repeats.

S3 keeps a key's history as versions and delete markers; GCS as generations that become
noncurrent when overwritten or deleted (the driver turns a deletion into a marker, so both
read the same here).  The version current at ``T`` is the newest one written at or before
``T``; a delete marker there means the key did not exist at ``T``."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import groupby

from attrs import field, frozen

from gocdbackup.model._validate import aware


@frozen(kw_only=True)
class ObjectVersion:
    key: str
    #: the store's id of this version: an S3 VersionId, a GCS generation
    version: str
    written_at: datetime = field(validator=aware)
    size_bytes: int = 0
    #: a content tag the store gives (S3 ETag, GCS MD5/CRC32C): equal tags, equal bytes
    etag: str | None = None
    #: a delete marker (the key did not exist from ``written_at`` on)
    deleted: bool = False
    #: the version a plain read returns now
    latest: bool = False


def key_histories(versions: Iterable[ObjectVersion]) -> Iterator[list[ObjectVersion]]:
    """Each key's versions, newest first, from a listing in key order (within a key, the
    store's order breaks ties between versions written in the same instant)."""
    for _, group in groupby(versions, key=lambda v: v.key):
        history = list(group)
        # stable: equal timestamps keep the listing's (newest first) order, the latest first
        history.sort(key=lambda v: (v.written_at, v.latest), reverse=True)
        yield history


def current_at(history: list[ObjectVersion], at: datetime) -> ObjectVersion | None:
    """The version of one key that was current at ``at`` (a delete marker if it had been
    deleted), None if the key had not been written yet; ``history`` newest first."""
    for version in history:
        if version.written_at <= at:
            return version
    return None


def live_at(history: list[ObjectVersion], at: datetime) -> ObjectVersion | None:
    """The object a read returned at ``at``: :func:`current_at` unless that is a marker."""
    version = current_at(history, at)
    return None if version is None or version.deleted else version


def same_content(a: ObjectVersion, b: ObjectVersion) -> bool:
    """The same bytes: the same version, or the same content tag and size."""
    return a.version == b.version or (
        a.etag is not None and a.etag == b.etag and a.size_bytes == b.size_bytes
    )


#: gocdbackup's own keys in a bucket (the orphan quarantine, batch manifests): a rollback
#: neither plans nor touches them
OWN_PREFIX = ".gocdbackup-"


class PitAction(enum.Enum):
    RESTORE = "restore"  # make the version current at T current again (server-side copy)
    DELETE = "delete"  # the key did not exist at T (a delete marker: the bytes stay a version)
    COPY = "copy"  # write the version current at T into the other bucket
    UNCHANGED = "unchanged"  # the bucket already holds what it held at T


@frozen(kw_only=True)
class PitStep:
    key: str
    action: PitAction
    #: the version to restore or copy (None for a delete)
    version: str | None = None
    size_bytes: int = 0


@frozen(kw_only=True)
class PitPlan:
    """What makes ``store`` (or ``into``) hold exactly what ``store`` held at ``at``."""

    id: str
    store: str
    at: datetime = field(validator=aware)
    into: str | None = None
    steps: tuple[PitStep, ...] = ()
    #: keys listed (every key with any version)
    keys: int = 0

    def counts(self) -> dict[str, int]:
        out = {a.value: 0 for a in PitAction}
        for step in self.steps:
            out[step.action.value] += 1
        if self.into is None:
            del out[PitAction.COPY.value]
        else:
            del out[PitAction.RESTORE.value], out[PitAction.DELETE.value]
        return out

    def work(self) -> list[PitStep]:
        return [s for s in self.steps if s.action is not PitAction.UNCHANGED]

    def bytes_to_copy(self) -> int:
        return sum(s.size_bytes for s in self.work())

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "store": self.store,
            "into": self.into,
            "time": self.at.isoformat(),
            "keys": self.keys,
            "counts": self.counts(),
            "bytes": self.bytes_to_copy(),
        }


def plan_rollback(
    histories: Iterable[list[ObjectVersion]],
    at: datetime,
    *,
    store: str,
    into: dict[str, ObjectVersion] | None = None,
    into_url: str | None = None,
) -> PitPlan:
    """The steps that bring the bucket back to ``at``, key by key.  In the bucket itself
    (``into`` None): restore the version current at ``at`` where another is current now,
    delete what did not exist then.  Into another bucket (``into``: its current objects by
    key): copy each object live at ``at`` unless the same content is there already.  The id
    covers the store, the instant and the version every listed key must end at, so a plan
    half carried out keeps its id (resume with the same ``--confirm``), and a bucket changed
    since the plan gets another.  gocdbackup's own keys (:data:`OWN_PREFIX`) are left out."""
    digest = hashlib.sha256(f"{store}\n{into_url or ''}\n{at.isoformat()}\n".encode())
    steps: list[PitStep] = []
    keys = 0
    for history in histories:
        key = history[0].key
        if key.startswith(OWN_PREFIX):
            continue
        keys += 1
        then = live_at(history, at)
        digest.update(f"{key}\0{then.version if then else '-'}\n".encode())
        if into is not None:
            if then is None:
                continue
            there = into.get(key)
            same = there is not None and same_content(there, then)
            action = PitAction.UNCHANGED if same else PitAction.COPY
            steps.append(
                PitStep(key=key, action=action, version=then.version, size_bytes=then.size_bytes)
            )
            continue
        now = next((v for v in history if v.latest and not v.deleted), None)
        if then is None:
            if now is not None:
                steps.append(PitStep(key=key, action=PitAction.DELETE))
        elif now is not None and same_content(now, then):
            steps.append(PitStep(key=key, action=PitAction.UNCHANGED, version=then.version))
        else:
            steps.append(
                PitStep(
                    key=key,
                    action=PitAction.RESTORE,
                    version=then.version,
                    size_bytes=then.size_bytes,
                )
            )
    return PitPlan(
        id="pit-" + digest.hexdigest()[:16],
        store=store,
        at=at,
        into=into_url,
        steps=tuple(steps),
        keys=keys,
    )
