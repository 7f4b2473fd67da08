"""How current the protection is: the age of the newest backup, of the last successful
verification and of the last successful restore drill, each against a threshold."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from attrs import frozen

from gocdbackup.model.durations import format_duration
from gocdbackup.model.render import html_table, to_pandas


@frozen(kw_only=True)
class Thresholds:
    """How old each may be before it is overdue (the defaults: a nightly backup with slack,
    a weekly verification, a quarterly drill)."""

    backup: timedelta = timedelta(hours=26)
    verify: timedelta = timedelta(days=8)
    drill: timedelta = timedelta(days=92)


@frozen(kw_only=True)
class Freshness:
    what: str  # "backup", "verify", "drill"
    last: datetime | None  # None: never
    limit: timedelta
    detail: str = ""

    def age(self, now: datetime) -> timedelta | None:
        return None if self.last is None else now - self.last

    def overdue(self, now: datetime) -> bool:
        age = self.age(now)
        return age is None or age > self.limit


@frozen(kw_only=True)
class StatusReport:
    now: datetime
    items: tuple[Freshness, ...]

    @property
    def overdue(self) -> tuple[str, ...]:
        return tuple(i.what for i in self.items if i.overdue(self.now))

    @property
    def ok(self) -> bool:
        return not self.overdue

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for i in self.items:
            age = i.age(self.now)
            out.append(
                {
                    "what": i.what,
                    "last": None if i.last is None else i.last.isoformat(),
                    "age": "never" if age is None else format_duration(age),
                    "limit": format_duration(i.limit),
                    "overdue": i.overdue(self.now),
                    "detail": i.detail,
                }
            )
        return out

    def summary(self) -> dict[str, Any]:
        return {"ok": self.ok, "overdue": list(self.overdue), "items": self.rows()}

    def verdict(self) -> str:
        if self.ok:
            return "ok: backup, verification and drill are all within their limits"
        return "OVERDUE: " + ", ".join(self.overdue)

    def to_pandas(self) -> Any:
        return to_pandas(self.rows())

    def __repr__(self) -> str:
        return f"<StatusReport {self.verdict()}>"

    def _repr_html_(self) -> str:
        return html_table(self.rows(), caption=self.verdict())
