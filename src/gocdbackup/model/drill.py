"""A restore drill's report: every step it took (timed), every check it ran (pass or fail, with
the evidence), the time the drill took to get a working copy (its RTO) and the backup's age
when it ran (the RPO at drill time).  Renders as a summary, JSON, Markdown and a notebook
table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from attrs import frozen

from gocdbackup.model.render import html_table, kv_table, to_pandas

#: the checks a drill runs, in order: (name, what it stands for)
CHECKS = (
    ("goose", "the schema's migrations: the backup's goose version, every version 1..N applied"),
    ("rows", "every table's exact row count equals the backup's; every foreign key holds"),
    ("dashboard", "what the dashboard's main views read returns rows, quickly"),
    ("recent_runs", "the newest run of the restored copy is the newest run at the backup"),
    ("logs", "a finished run's logs read back and parse, from log_lines or their archive"),
    ("artifacts", "sampled artefacts are back with the SHA-256 and size the database records"),
    ("secrets", "the application key is the backup's and every encrypted value decrypts"),
)


@frozen(kw_only=True)
class DrillStep:
    name: str
    seconds: float
    ok: bool = True
    note: str = ""


@frozen(kw_only=True)
class DrillCheck:
    name: str
    ok: bool | None  # None: not run (nothing to check, e.g. no key given)
    evidence: str

    @property
    def verdict(self) -> str:
        return "skipped" if self.ok is None else "ok" if self.ok else "FAILED"


@frozen(kw_only=True)
class DrillReport:
    """What a drill did and found."""

    backup_id: str
    started_at: datetime
    backup_taken_at: datetime
    scratch: str  # where the copy was restored (no credentials)
    steps: tuple[DrillStep, ...] = ()
    checks: tuple[DrillCheck, ...] = ()
    #: what teardown could not remove (empty: nothing left behind)
    left_behind: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        ran = [c for c in self.checks if c.ok is not None]
        return bool(ran) and all(c.ok for c in ran) and all(s.ok for s in self.steps)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if c.ok is False)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    @property
    def rto_seconds(self) -> float:
        """Time to a working, checked copy: every step but the teardown."""
        return sum(s.seconds for s in self.steps if s.name != "teardown")

    @property
    def rpo_seconds(self) -> float:
        """The backup's age when the drill started."""
        return (self.started_at - self.backup_taken_at).total_seconds()

    def verdict(self) -> str:
        if self.ok:
            return (
                f"drill of {self.backup_id} passed: {len(self.checks)} checks, a working copy in "
                f"{self.rto_seconds:.1f} s, the backup {self.rpo_seconds / 3600:.1f} h old"
            )
        failed = ", ".join(self.failed) or ", ".join(s.name for s in self.steps if not s.ok)
        return f"drill of {self.backup_id} FAILED: {failed}"

    def summary(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "ok": self.ok,
            "checks": {c.name: {"ok": c.ok, "evidence": c.evidence} for c in self.checks},
            "timings": {s.name: round(s.seconds, 3) for s in self.steps},
            "rto_seconds": round(self.rto_seconds, 3),
            "rpo_seconds": round(self.rpo_seconds, 3),
            "scratch": self.scratch,
            "left_behind": list(self.left_behind),
            "started_at": self.started_at.isoformat(),
        }

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"check": c.name, "verdict": c.verdict, "evidence": c.evidence} for c in self.checks
        ]

    def to_pandas(self) -> Any:
        return to_pandas(self.rows())

    def to_markdown(self) -> str:
        lines = [f"# Restore drill of {self.backup_id}", "", self.verdict(), ""]
        lines += ["| check | verdict | evidence |", "|---|---|---|"]
        lines += [f"| {c.name} | {c.verdict} | {c.evidence} |" for c in self.checks]
        lines += ["", "| step | seconds | note |", "|---|---:|---|"]
        lines += [f"| {s.name} | {s.seconds:.2f} | {s.note} |" for s in self.steps]
        if self.left_behind:
            lines += ["", "Left behind: " + ", ".join(self.left_behind)]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"<DrillReport {self.verdict()}>"

    def _repr_html_(self) -> str:
        head = kv_table([("verdict", self.verdict()), ("scratch", self.scratch)], caption="Drill")
        steps = [
            {"step": s.name, "seconds": round(s.seconds, 2), "note": s.note} for s in self.steps
        ]
        return head + html_table(self.rows(), caption="checks") + html_table(steps, caption="steps")


@frozen(kw_only=True)
class RunLogs:
    """A finished job's logs as the restored database holds them: its lines in ``log_lines``
    (``(seq, stream, text)``), or the key of their archive in the artefact store."""

    job_run_id: str
    archive_key: str | None = None
    lines: tuple[tuple[int, str, str], ...] = ()
