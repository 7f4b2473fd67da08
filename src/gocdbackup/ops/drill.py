"""A restore drill: gocdnext's quarterly "restore it and look" as one call.  The backup is
verified, restored into a scratch database (and a sample of its objects into a scratch
store), questioned, and torn down, always; each step is timed and each check reported with
its evidence."""

from __future__ import annotations

import gzip
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from gocdbackup.context import OpContext
from gocdbackup.errors import Cancelled, GocdBackupError, IntegrityError
from gocdbackup.gocdnext.logs import parse_archive
from gocdbackup.model.artifacts import ArtifactEntry, ArtifactIndex
from gocdbackup.model.backup import BackupSet, RunMark
from gocdbackup.model.drill import DrillCheck, DrillReport, DrillStep, RunLogs
from gocdbackup.model.restore import RestoreReport
from gocdbackup.model.secrets import SecretsCheck
from gocdbackup.ops.artifact_index import load_index
from gocdbackup.ops.artifact_restore import restore_artifacts
from gocdbackup.ops.records import DRILLS, keep_record
from gocdbackup.ops.restore import restore_backup
from gocdbackup.ops.secrets import check_backup_key
from gocdbackup.ops.verify import verify_repository
from gocdbackup.ports import DrillData, ObjectStore, Postgres
from gocdbackup.repository import Repository

log = logging.getLogger("gocdbackup.ops.drill")

#: objects a drill restores and checks by default
DEFAULT_SAMPLE = 20
#: what "the dashboard loads" allows its queries on the restored copy
DASHBOARD_SECONDS = 5.0


class _Steps:
    def __init__(self) -> None:
        self.steps: list[DrillStep] = []

    @contextmanager
    def step(self, name: str) -> Iterator[dict[str, Any]]:
        out: dict[str, Any] = {"ok": True, "note": ""}
        start = time.perf_counter()
        try:
            yield out
        except Cancelled:
            out.update(ok=False, note="interrupted")
            raise
        except GocdBackupError as exc:
            problems = list(getattr(exc, "problems", ()) or ())[:5]
            out.update(ok=False, note="; ".join([str(exc), *problems]))
        finally:
            self.steps.append(
                DrillStep(
                    name=name,
                    seconds=time.perf_counter() - start,
                    ok=bool(out["ok"]),
                    note=str(out["note"]),
                )
            )


def sample_of(entries: list[ArtifactEntry], sample: int | float) -> list[ArtifactEntry]:
    """``sample`` entries (an int), or that share of them (a float in (0, 1]), spread evenly
    over the keys; deterministic."""
    stored = sorted((e for e in entries if e.outcome.stored), key=lambda e: e.ref.key)
    n = len(stored) if isinstance(sample, float) and sample >= 1 else sample
    count = round(len(stored) * n) if isinstance(n, float) else min(int(n), len(stored))
    if count <= 0 or not stored:
        return []
    step = len(stored) / count
    return [stored[int(i * step)] for i in range(count)]


def _check_objects(store: ObjectStore, entries: list[ArtifactEntry]) -> DrillCheck:
    bad: list[str] = []
    for entry in entries:
        data = store.read(entry.ref.key)
        sha = hashlib.sha256(data).hexdigest()
        want_sha = entry.ref.sha256 or entry.sha256
        want_size = entry.ref.size_bytes if entry.ref.size_bytes is not None else entry.size_bytes
        if sha != want_sha or len(data) != want_size:
            bad.append(f"{entry.ref.key} (SHA-256 {sha[:12]}…, {len(data)} bytes)")
    if bad:
        return DrillCheck(
            name="artifacts",
            ok=False,
            evidence=f"{len(bad)}/{len(entries)} sampled objects differ from the database's "
            f"record: {', '.join(bad[:5])}",
        )
    return DrillCheck(
        name="artifacts",
        ok=True,
        evidence=f"{len(entries)} sampled object(s) back with the SHA-256 and size recorded",
    )


def _check_goose(backup: BackupSet, versions: list[int]) -> DrillCheck:
    want = backup.point.goose_version
    if want is None:
        return DrillCheck(name="goose", ok=None, evidence="the backup recorded no goose version")
    gaps = sorted(set(range(1, want + 1)) - set(versions))
    newest = max(versions, default=None)
    if newest != want or gaps:
        missing = f"; versions missing: {', '.join(map(str, gaps[:10]))}" if gaps else ""
        return DrillCheck(
            name="goose",
            ok=False,
            evidence=f"restored copy at goose {newest}, the backup at {want}{missing}",
        )
    return DrillCheck(name="goose", ok=True, evidence=f"goose {want}, versions 1..{want} applied")


def _check_rows(restored: RestoreReport, keys: tuple[int, list[tuple[str, int]]]) -> DrillCheck:
    checked, broken = keys
    counts = f"{restored.tables_checked} tables, {restored.rows_checked:,} rows as in the backup"
    if broken:
        shown = ", ".join(f"{name} ({n} rows)" for name, n in broken[:5])
        return DrillCheck(
            name="rows", ok=False, evidence=f"{counts}; foreign keys that do not hold: {shown}"
        )
    return DrillCheck(name="rows", ok=True, evidence=f"{counts}; {checked} foreign keys hold")


def _check_dashboard(rows: int, seconds: float) -> DrillCheck:
    took = f"{rows} pipeline row(s) with their latest runs in {seconds * 1000:.0f} ms"
    if not rows:
        return DrillCheck(name="dashboard", ok=False, evidence="no project has a pipeline")
    if seconds > DASHBOARD_SECONDS:
        return DrillCheck(
            name="dashboard",
            ok=False,
            evidence=f"{took}: slower than {DASHBOARD_SECONDS:.0f} s (indexes missing?)",
        )
    return DrillCheck(name="dashboard", ok=True, evidence=took)


def _check_recent(backup: BackupSet, found: RunMark | None) -> DrillCheck:
    want = backup.newest_run
    if want is None:
        return DrillCheck(name="recent_runs", ok=None, evidence="the backup recorded no newest run")
    if found is None or found.id != want.id:
        return DrillCheck(
            name="recent_runs",
            ok=False,
            evidence=f"the newest run is {found.id if found else 'none'}; at the backup it was "
            f"{want.id} ({want.created_at:%Y-%m-%d %H:%M:%S}Z)",
        )
    return DrillCheck(
        name="recent_runs",
        ok=True,
        evidence=f"newest run {want.id} of {want.created_at:%Y-%m-%d %H:%M:%S}Z, as at the backup",
    )


def _check_logs(found: RunLogs | None, read_archive: Callable[[str], bytes]) -> DrillCheck:
    if found is None:
        return DrillCheck(name="logs", ok=None, evidence="no finished job has logs")
    where = f"job {found.job_run_id}"
    if found.archive_key is None:
        return DrillCheck(
            name="logs",
            ok=bool(found.lines),
            evidence=f"{where}: {len(found.lines)} line(s) in log_lines",
        )
    try:
        lines = parse_archive(gzip.decompress(read_archive(found.archive_key)).decode())
    except (OSError, EOFError, UnicodeDecodeError, GocdBackupError) as exc:
        return DrillCheck(
            name="logs", ok=False, evidence=f"{where}: archive {found.archive_key}: {exc}"
        )
    return DrillCheck(
        name="logs",
        ok=bool(lines),
        evidence=f"{where}: {len(lines)} line(s) from its archive {found.archive_key}",
    )


def run_drill(
    repo: Repository,
    backup: BackupSet,
    *,
    scratch: Postgres,
    target: str,
    questions: Callable[[str], DrillData],
    store: ObjectStore | None,
    ctx: OpContext,
    sample: int | float = DEFAULT_SAMPLE,
    run_id: str | None = None,
    secret_key: bytes | None = None,
    check_secrets: Callable[[str], SecretsCheck] | None = None,
) -> DrillReport:
    """Drill ``backup``: verify it, restore it into database ``target`` of ``scratch`` (and
    ``sample`` of its objects into ``store``), run the checks, drop ``target``.  With the
    application key (``secret_key`` and ``check_secrets``), the key's fingerprint and every
    sealed value are checked too."""
    started = ctx.now()
    steps, checks = _Steps(), []
    restored: RestoreReport | None = None
    index: ArtifactIndex | None = None
    left: list[str] = []
    written: list[str] = []  # keys restored into the scratch store: removed at the teardown
    try:
        with steps.step("verify") as out:
            report = verify_repository(repo, ctx=ctx, backup_id=backup.id)
            out.update(ok=report.ok, note="" if report.ok else "the backup is damaged")
        key_refused = _key_refused(backup, secret_key)
        with steps.step("restore") as out:
            restored = restore_backup(
                repo,
                scratch,
                backup.id,
                confirm=backup.id,
                ctx=ctx,
                target=target,
                check_secrets=None if key_refused else check_secrets,
            )
        with steps.step("artifacts") as out:
            index = load_index(repo, backup, ctx)
            chosen = sample_of(list(index.entries), sample) if index and store else []
            if chosen and store is not None:
                written += [e.ref.key for e in chosen]
                restore_artifacts(repo, ArtifactIndex(entries=tuple(chosen)), store, ctx=ctx)
                checks.append(_check_objects(store, chosen))
            out["note"] = f"{len(chosen)} object(s) restored"
        with steps.step("checks"):
            checks[:0] = _database_checks(
                backup,
                restored,
                questions(target) if restored else None,
                read_archive=_archive_reader(repo, index, store, ctx, written),
                run_id=run_id,
                restore_error=next((t.note for t in steps.steps if t.name == "restore"), ""),
            )
            if secret_key is not None:
                checks.append(key_refused or _secrets_check(restored, left_key=backup))
    finally:
        with steps.step("teardown") as out:
            left += _teardown(scratch, target, store, written)
            out["note"] = "nothing left" if not left else f"left: {', '.join(left)}"
    drilled = DrillReport(
        backup_id=backup.id,
        started_at=started,
        backup_taken_at=backup.created_at,
        scratch=f"{scratch.source_id()} database {target}",
        steps=tuple(steps.steps),
        checks=tuple(checks),
        left_behind=tuple(left),
    )
    keep_record(repo, DRILLS, ctx.now(), drilled.summary())
    return drilled


def _database_checks(
    backup: BackupSet,
    restored: RestoreReport | None,
    data: DrillData | None,
    *,
    read_archive: Callable[[str], bytes],
    run_id: str | None,
    restore_error: str = "",
) -> list[DrillCheck]:
    if restored is None or data is None:
        # the restore compares every table's rows (and goose) with the backup's: its refusal
        # is the rows check failing; the others have no copy to look at
        failed = DrillCheck(
            name="rows", ok=False, evidence=f"the backup could not be restored: {restore_error}"
        )
        return [
            failed
            if name == "rows"
            else DrillCheck(name=name, ok=None, evidence="no restored copy to check")
            for name in ("goose", "rows", "dashboard", "recent_runs", "logs")
        ]
    return [
        _check_goose(backup, data.goose_versions()),
        _check_rows(restored, data.broken_foreign_keys()),
        _check_dashboard(*data.dashboard()),
        _check_recent(backup, data.newest_run()),
        _check_logs(data.run_logs(run_id), read_archive),
    ]


def _archive_reader(
    repo: Repository,
    index: ArtifactIndex | None,
    store: ObjectStore | None,
    ctx: OpContext,
    written: list[str],
) -> Callable[[str], bytes]:
    """Reads a log archive from the backup (restored into ``store`` first, noted in
    ``written`` for the teardown)."""

    def read_archive(key: str) -> bytes:
        entry = next((e for e in (index.entries if index else ()) if e.ref.key == key), None)
        if entry is None or store is None or not entry.outcome.stored:
            raise IntegrityError(f"the backup holds no copy of {key}")
        written.append(key)
        restore_artifacts(repo, ArtifactIndex(entries=(entry,)), store, ctx=ctx)
        return store.read(key)

    return read_archive


def _key_refused(backup: BackupSet, key: bytes | None) -> DrillCheck | None:
    """The secrets check's failure when ``key`` is not the one the backup was taken with."""
    if key is None:
        return None
    try:
        check_backup_key(backup, key)
    except GocdBackupError as exc:
        return DrillCheck(name="secrets", ok=False, evidence=str(exc))
    return None


def _secrets_check(restored: RestoreReport | None, *, left_key: BackupSet) -> DrillCheck:
    taken = left_key.key_check
    if restored is None or restored.secrets is None:
        return DrillCheck(name="secrets", ok=False, evidence="the restore did not get that far")
    check = restored.secrets
    same = "the backup's key" if taken is not None else "a key (the backup recorded none)"
    return DrillCheck(
        name="secrets", ok=check.passed, evidence=f"{same} {check.fingerprint}: {check.verdict()}"
    )


def _teardown(
    scratch: Postgres, target: str, store: ObjectStore | None, written: list[str]
) -> list[str]:
    """Drop the scratch database and remove what was written into the scratch store; what
    could not be removed."""
    left = []
    try:
        scratch.drop(target)
    except GocdBackupError as exc:
        log.warning("drill teardown: %s", exc)
        left.append(f"database {target}")
    for key in dict.fromkeys(written):
        try:
            if store is not None:
                store.delete(key)
        except GocdBackupError as exc:
            log.warning("drill teardown: %s", exc)
            left.append(f"object {key}")
    return left
