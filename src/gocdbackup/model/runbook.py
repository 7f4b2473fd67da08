"""What a disaster runbook did, step by step, and what it left undone."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from attrs import frozen

from gocdbackup.model.render import html_table

#: how many keys an outstanding item names (the report of a scan names them all)
SAMPLE = 20


class RunbookStep(NamedTuple):
    name: str
    detail: dict[str, Any]
    #: one short sentence for people
    text: str


@frozen(kw_only=True)
class Outstanding:
    """Work a runbook left undone, and why.

    ``kind`` is ``confirm`` (waits for ``confirm=confirm_id``), ``held_back`` (younger than the
    grace window: run again after ``retry_after``) or ``rows_without_objects`` (rows the
    lost-database runbook cannot give objects back to: the lost-bucket runbook can)."""

    kind: str
    count: int
    reason: str
    confirm_id: str | None = None
    retry_after: datetime | None = None
    keys: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "reason": self.reason,
            "confirm_id": self.confirm_id,
            "retry_after": None if self.retry_after is None else self.retry_after.isoformat(),
            "keys": list(self.keys),
        }


@frozen(kw_only=True)
class RunbookReport:
    runbook: str
    steps: tuple[RunbookStep, ...]
    #: what ``confirm`` must repeat to run the destructive step (None: nothing to confirm)
    confirm_id: str | None
    applied: bool
    outstanding: tuple[Outstanding, ...] = ()

    @property
    def complete(self) -> bool:
        """The store and the database agree: nothing is left for this runbook to do."""
        return not self.outstanding

    def summary(self) -> dict[str, Any]:
        return {
            "runbook": self.runbook,
            "complete": self.complete,
            "steps": [{"step": s.name, "result": s.text, **s.detail} for s in self.steps],
            "confirm_id": self.confirm_id,
            "applied": self.applied,
            "outstanding": [o.summary() for o in self.outstanding],
        }

    def rows(self) -> list[dict[str, Any]]:
        return [{"step": s.name, "result": s.text} for s in self.steps]

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"{len(self.outstanding)} item(s) outstanding"
        return f"<RunbookReport {self.runbook}: {state}>"

    def _repr_html_(self) -> str:
        state = "complete" if self.complete else "INCOMPLETE"
        out = html_table(self.rows(), caption=f"Runbook {self.runbook} ({state})")
        if self.outstanding:
            out += html_table(
                [
                    {
                        "left undone": o.kind,
                        "count": o.count,
                        "why": o.reason,
                        "confirm": o.confirm_id or "",
                        "after": "" if o.retry_after is None else o.retry_after.isoformat(),
                    }
                    for o in self.outstanding
                ],
                caption="Outstanding",
            )
        return out
