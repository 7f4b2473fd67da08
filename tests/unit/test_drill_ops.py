"""run_drill against the fakes: the newest run recorded at the backup is found again (or the
check says what it found instead), the dashboard check wants rows, and teardown always runs,
also when the restore fails or the drill is interrupted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from attrs import define

from gocdbackup.context import OpContext
from gocdbackup.errors import Cancelled
from gocdbackup.model.backup import RunMark
from gocdbackup.model.drill import RunLogs
from gocdbackup.ops import take_backup
from gocdbackup.ops.drill import run_drill
from gocdbackup.repository import Repository
from gocdbackup.testing import FakeGocdnext, FakePostgres

NEWEST = RunMark(id="run-2", created_at=datetime(2026, 11, 29, 23, 0, tzinfo=UTC))


@define
class Restored:
    """A restored copy as a drill questions it (a test double of ``DrillData``)."""

    newest: RunMark | None = NEWEST
    pipelines: int = 3

    def goose_versions(self) -> list[int]:
        return list(range(1, 87))

    def broken_foreign_keys(self) -> tuple[int, list[tuple[str, int]]]:
        return 12, []

    def run_logs(self, run_id: str | None = None) -> RunLogs | None:
        return RunLogs(job_run_id="job-1", lines=((1, "stdout", "ok"),))

    def newest_run(self) -> RunMark | None:
        return self.newest

    def dashboard(self) -> tuple[int, float]:
        return self.pipelines, 0.01


def drill(
    repo: Repository, db: FakePostgres, ctx: OpContext, restored: Restored
) -> tuple[dict[str, bool | None], FakePostgres]:
    db.databases["gocdnext"].newest_run = NEWEST
    backup = take_backup(repo, db, ctx=ctx, gocdnext=FakeGocdnext(db))
    assert backup.newest_run == NEWEST
    report = run_drill(
        repo,
        backup,
        scratch=db,
        target="drill",
        questions=lambda _: restored,
        store=None,
        ctx=ctx,
    )
    assert "drill" not in db.databases  # torn down
    return {c.name: c.ok for c in report.checks}, db


def test_the_newest_run_is_found_again(repo: Repository, db: FakePostgres, ctx: OpContext) -> None:
    checks, _ = drill(repo, db, ctx, Restored())
    assert checks == {
        "goose": True,
        "rows": True,
        "dashboard": True,
        "recent_runs": True,
        "logs": True,
    }


@pytest.mark.parametrize(
    ("restored", "fault"),
    [
        (Restored(newest=RunMark(id="run-1", created_at=NEWEST.created_at)), "recent_runs"),
        (Restored(pipelines=0), "dashboard"),
    ],
)
def test_each_fault_fails_its_check(
    repo: Repository, db: FakePostgres, ctx: OpContext, restored: Restored, fault: str
) -> None:
    checks, _ = drill(repo, db, ctx, restored)
    assert [name for name, ok in checks.items() if ok is False] == [fault]


def test_an_interrupted_drill_still_tears_down(
    repo: Repository, db: FakePostgres, ctx: OpContext
) -> None:
    backup = take_backup(repo, db, ctx=ctx, gocdnext=FakeGocdnext(db))

    def questions(_name: str) -> Restored:
        ctx.cancel.cancel()  # Ctrl-C while the checks run
        ctx.check()
        return Restored()

    with pytest.raises(Cancelled):
        run_drill(
            repo, backup, scratch=db, target="drill", questions=questions, store=None, ctx=ctx
        )
    assert "drill" not in db.databases
