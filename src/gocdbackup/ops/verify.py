"""verify_repository: structure check of every manifest, and read-back of a sample of data.

Every damaged blob is reported, not just the first, with what it breaks: the backup, and the
database dump, the artefact index or the keys of the artefacts whose content it holds.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future

from attrs import Factory, define

from gocdbackup.context import OpContext
from gocdbackup.errors import (
    ConfigError,
    GocdBackupError,
    IntegrityError,
    StorageError,
    TransientStorageError,
)
from gocdbackup.model.artifacts import ArtifactEntry, ArtifactIndex
from gocdbackup.model.backup import BackupSet, ChunkRef, Component
from gocdbackup.model.verify import BackupCheck, BlobProblem, DamagedBlob, VerifyReport
from gocdbackup.ops._components import missing_chunks, wrong_size_chunks
from gocdbackup.ops.artifact_index import INDEX_KIND
from gocdbackup.ops.records import VERIFIES, keep_record
from gocdbackup.repository import Repository
from gocdbackup.repository.streams import fetch_chunks

log = logging.getLogger("gocdbackup.ops.verify")

#: the part of a backup made of the artefacts' own chunks (listed by the artefact index)
ARTIFACTS_PART = "artifacts"


def verify_repository(
    repo: Repository,
    *,
    ctx: OpContext,
    backup_id: str | None = None,
    read_data_percent: float = 0.0,
    seed: int | None = None,
) -> VerifyReport:
    """Check that every manifest (or just ``backup_id``'s) parses and that every blob it needs
    exists with the size recorded; read back ``read_data_percent`` % of the chunks of each
    part of each backup (the dump, the artefacts), at least one chunk of each part for any
    share above zero.  The artefact index is always read in full (it lists the artefacts'
    chunks).  At 100 % every chunk is read, and each component's whole-stream SHA-256 is
    checked too.  Damage is reported per backup and per blob, never raised.
    """
    if not 0.0 <= read_data_percent <= 100.0:
        raise ConfigError(f"read-data must be between 0 and 100 %, got {read_data_percent}")
    started = time.perf_counter()
    with repo.lock("shared", "verify", ctx.clock):
        report = _verify(repo, ctx, backup_id, read_data_percent, seed)
    keep_record(
        repo,
        VERIFIES,
        ctx.now(),
        {
            "ok": report.ok,
            "backup_id": backup_id,
            "read_data_percent": read_data_percent,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    return report


def _verify(
    repo: Repository,
    ctx: OpContext,
    backup_id: str | None,
    read_data_percent: float,
    seed: int | None,
) -> VerifyReport:
    ids = [backup_id] if backup_id is not None else repo.backup_ids()
    if backup_id is not None:
        repo.read_manifest(backup_id)  # BackupNotFound before anything else
    stored = repo.blob_sizes()
    rng = random.Random(seed)  # noqa: S311 - sampling, not cryptography
    checks = []
    problems: list[str] = []
    for n, bid in enumerate(ids):
        ctx.check()
        ctx.report("verify", n, len(ids), unit="backups", message=bid)
        try:
            backup = repo.read_manifest(bid).backup
        except GocdBackupError as exc:
            problems.append(f"backup {bid}: manifest unreadable: {exc}")
            continue
        checks.append(_check_backup(repo, backup, stored, read_data_percent, rng, ctx))
    ctx.report("verify", len(ids), len(ids), unit="backups")
    return VerifyReport(
        checks=tuple(checks), read_data_percent=read_data_percent, problems=tuple(problems)
    )


@define
class _Findings:
    """What the check of one backup found so far."""

    #: damaged blob id -> (problem, detail); a blob's first problem is the one reported
    damaged: dict[str, tuple[BlobProblem, str]] = Factory(dict)
    #: part -> problem -> damaged blob ids, for the summary lines
    by_part: dict[str, dict[BlobProblem, set[str]]] = Factory(dict)
    problems: list[str] = Factory(list)
    read: int = 0

    def add(self, part: str, blob_id: str, problem: BlobProblem, detail: str = "") -> None:
        self.damaged.setdefault(blob_id, (problem, detail))
        self.by_part.setdefault(part, {}).setdefault(problem, set()).add(blob_id)

    def listing(self, part: str, refs: Sequence[ChunkRef], stored: dict[str, int]) -> None:
        """Damage visible without reading: blobs absent from the listing or of another size."""
        for blob_id in missing_chunks(refs, stored):
            self.add(part, blob_id, BlobProblem.MISSING)
        for blob_id in wrong_size_chunks(refs, stored):
            recorded = next(r.stored_bytes for r in refs if r.blob_id == blob_id)
            detail = f"stored as {stored[blob_id]} bytes, the backup recorded {recorded}"
            self.add(part, blob_id, BlobProblem.WRONG_SIZE, detail)

    def summary(self) -> list[str]:
        """``'2 blob(s) missing from postgres_dump'``, ... (the lines verify always gave)."""
        lines = []
        for part, found in self.by_part.items():
            for problem, template in _SUMMARY.items():
                if found.get(problem):
                    lines.append(template.format(n=len(found[problem]), part=part))
        return lines


_SUMMARY = {
    BlobProblem.MISSING: "{n} blob(s) missing from {part}",
    BlobProblem.WRONG_SIZE: "{n} blob(s) of the wrong size in {part}",
    BlobProblem.UNREADABLE: "{n} blob(s) unreadable in {part}",
}


def _check_backup(  # noqa: PLR0917
    repo: Repository,
    backup: BackupSet,
    stored: dict[str, int],
    percent: float,
    rng: random.Random,
    ctx: OpContext,
) -> BackupCheck:
    found = _Findings()
    for component in backup.components:
        found.listing(component.kind, component.chunks, stored)
    entries: tuple[ArtifactEntry, ...] = ()
    index = next((c for c in backup.components if c.kind == INDEX_KIND), None)
    if index is not None:
        entries = _read_index(repo, index, found, ctx)
    objects = list({c.blob_id: c for e in entries for c in e.chunks}.values())
    found.listing(ARTIFACTS_PART, objects, stored)
    for component in backup.components:
        if component is index:
            continue
        if percent >= 100.0:
            _read_whole(repo, component, found, ctx)
        else:
            _read_sample(repo, component.kind, component.chunks, found, percent, rng, ctx)
    _read_sample(repo, ARTIFACTS_PART, objects, found, percent, rng, ctx)
    return BackupCheck(
        backup_id=backup.id,
        chunks=sum(len(c.chunks) for c in backup.components) + len(objects),
        chunks_read=found.read,
        problems=(*found.summary(), *found.problems),
        damaged=_attribute(backup, found.damaged, entries),
    )


def _read_index(
    repo: Repository, component: Component, found: _Findings, ctx: OpContext
) -> tuple[ArtifactEntry, ...]:
    """The artefact index's entries (read in full: they list the artefacts' chunks); none if
    it cannot be read, with a problem saying the artefacts went unchecked."""
    raw = bytearray()
    if not _read_whole(repo, component, found, ctx, keep=raw.extend):
        found.problems.append("artefact index unreadable: the artefacts were not checked")
        return ()
    try:
        return ArtifactIndex.from_jsonl(bytes(raw)).entries
    except GocdBackupError as exc:
        found.problems.append(f"artefact index unreadable: {exc}")
        return ()


def _read_whole(
    repo: Repository,
    component: Component,
    found: _Findings,
    ctx: OpContext,
    *,
    keep: Callable[[bytes], object] | None = None,
) -> bool:
    """Read every chunk of ``component``, going on past damaged ones (each is recorded), then,
    if all read back, check the stream's size and SHA-256.  True if the stream is intact.
    Only ``keep`` holds on to data."""
    skipped = 0

    def wanted() -> Iterator[ChunkRef]:
        nonlocal skipped
        for ref in component.chunks:
            if ref.blob_id in found.damaged:  # known bad: reading it again tells nothing new
                skipped += 1
            else:
                yield ref

    digest = hashlib.sha256()
    size = 0
    intact = True
    for _, data in _read_chunks(repo, wanted(), component.kind, found, ctx):
        if data is None:
            intact = False
            continue
        digest.update(data)
        size += len(data)
        ctx.report("read", size, component.size_bytes, message=component.kind)
        if keep is not None:
            keep(data)
    if not intact or skipped:
        return False
    if size != component.size_bytes or digest.hexdigest() != component.sha256:
        found.problems.append(
            f"the {component.kind} stream does not match its recorded SHA-256 "
            "(every chunk reads back: the manifest's chunk list is wrong)"
        )
        return False
    return True


def _read_sample(  # noqa: PLR0917
    repo: Repository,
    part: str,
    refs: Iterable[ChunkRef],
    found: _Findings,
    percent: float,
    rng: random.Random,
    ctx: OpContext,
) -> None:
    """Read ``percent`` % of the blobs of ``part`` (at least one if above zero), at random
    among those not already known damaged."""
    if percent <= 0.0:
        return
    unique = {r.blob_id: r for r in refs}
    k = sample_size(len(unique), percent)
    candidates = sorted(b for b in unique if b not in found.damaged)
    chosen = candidates if k >= len(candidates) else rng.sample(candidates, k)
    for _ in _read_chunks(repo, (unique[b] for b in chosen), part, found, ctx):
        pass


def sample_size(blobs: int, percent: float) -> int:
    """How many of ``blobs`` a read of ``percent`` % reads: at least that share, rounded up
    (so at least one for any share above zero), never more than there are."""
    if blobs <= 0 or percent <= 0.0:
        return 0
    # the epsilon keeps 30 % of 10 at 3 when the float product is 3.0000000000000004
    return min(blobs, max(1, math.ceil(blobs * percent / 100.0 - 1e-9)))


def _read_chunks(
    repo: Repository, refs: Iterable[ChunkRef], part: str, found: _Findings, ctx: OpContext
) -> Iterator[tuple[ChunkRef, bytes | None]]:
    """Each chunk with its plaintext, or None if it is damaged (recorded in ``found``)."""
    for ref, fut in fetch_chunks(repo, refs, ctx):
        found.read += 1
        yield ref, _plaintext(ref, fut, part, found)


def _plaintext(ref: ChunkRef, fut: Future[bytes], part: str, found: _Findings) -> bytes | None:
    try:
        data = fut.result()
    except TransientStorageError:
        raise  # the store is not answering: that says nothing about the blob
    except (IntegrityError, StorageError) as exc:
        log.debug("blob %s unreadable: %s", ref.blob_id, exc)
        found.add(part, ref.blob_id, BlobProblem.UNREADABLE, str(exc))
        return None
    if len(data) != ref.size_bytes:
        detail = f"decrypts to {len(data)} bytes, the backup recorded {ref.size_bytes}"
        found.add(part, ref.blob_id, BlobProblem.WRONG_SIZE, detail)
        return None
    return data


def _attribute(
    backup: BackupSet,
    damaged: dict[str, tuple[BlobProblem, str]],
    entries: Iterable[ArtifactEntry],
) -> tuple[DamagedBlob, ...]:
    """Each damaged blob with the backup's parts and artefact keys that need it."""
    if not damaged:
        return ()
    parts: dict[str, dict[str, None]] = {b: {} for b in damaged}
    keys: dict[str, dict[str, None]] = {b: {} for b in damaged}
    for component in backup.components:
        for ref in component.chunks:
            if ref.blob_id in parts:
                parts[ref.blob_id][component.kind] = None
    for entry in entries:
        for ref in entry.chunks:
            if ref.blob_id in keys:
                keys[ref.blob_id][entry.ref.key] = None
    return tuple(
        DamagedBlob(
            blob_id=blob_id,
            problem=problem,
            backup_id=backup.id,
            parts=tuple(parts[blob_id]),
            keys=tuple(keys[blob_id]),
            detail=detail,
        )
        for blob_id, (problem, detail) in damaged.items()
    )
