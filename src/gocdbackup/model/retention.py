"""Retention: which backups a policy keeps, which it forgets, and why. Pure: ``now`` is an
argument, time zones come from the standard library's ``zoneinfo``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from attrs import field, frozen

from gocdbackup.errors import ConfigError
from gocdbackup.model._validate import aware
from gocdbackup.model.backup import BackupSet, BackupStatus
from gocdbackup.model.durations import format_duration
from gocdbackup.model.render import html_table, to_pandas

_COUNTS = ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")


def _count(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"retention {attribute.name} must be a whole number >= 0, got {value!r}")


def _within(_inst: Any, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise ConfigError(f"retention keep_within must be a duration >= 0, got {value!r}")


def _zone(_inst: Any, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"retention tz must be an IANA time zone name, got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            f"unknown time zone {value!r} for retention (use an IANA name such as "
            "'UTC' or 'Europe/Berlin')"
        ) from None


@frozen(kw_only=True)
class RetentionPolicy:
    """How many backups to keep, by count, by age and by calendar slot.

    Invalid values raise :class:`~gocdbackup.errors.ConfigError`. A policy that keeps nothing
    (all zero, no ``keep_within``) is allowed: only the always-kept backups stay (see
    :func:`decide_retention`).
    """

    keep_last: int = field(default=0, validator=_count)
    keep_daily: int = field(default=0, validator=_count)
    keep_weekly: int = field(default=0, validator=_count)
    keep_monthly: int = field(default=0, validator=_count)
    keep_yearly: int = field(default=0, validator=_count)
    keep_within: timedelta | None = field(default=None, validator=_within)
    tz: str = field(default="UTC", validator=_zone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly; ``keep_within`` as a duration string (``'30d'``) or None."""
        out: dict[str, Any] = {name: getattr(self, name) for name in _COUNTS}
        within = self.keep_within
        out["keep_within"] = None if within is None else format_duration(within)
        out["tz"] = self.tz
        return out

    def describe(self) -> str:
        """``'last 3, 7 daily, 4 weekly, within 30d (Europe/Berlin)'``."""
        parts = [f"last {self.keep_last}"] if self.keep_last else []
        parts += [
            f"{getattr(self, n)} {n.removeprefix('keep_')}" for n in _COUNTS[1:] if getattr(self, n)
        ]
        if self.keep_within is not None:
            parts.append(f"within {format_duration(self.keep_within)}")
        return f"{', '.join(parts) or 'nothing beyond pins, running and newest'} ({self.tz})"


@frozen(kw_only=True)
class Decision:
    """Keep or forget one backup, with every reason that applies."""

    backup_id: str
    keep: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.backup_id, "keep": self.keep, "reasons": list(self.reasons)}


@frozen(kw_only=True)
class RetentionPlan:
    """What a policy decides for a repository's backups at ``now``, newest first.

    ``basis`` fingerprints the backups the plan was made from (ids, statuses, pins), so
    applying it can refuse when the repository changed; ``id`` is the value ``confirm=``
    must repeat. The same input always gives the same ``id``.
    """

    id: str
    policy: RetentionPolicy
    now: datetime = field(validator=aware)
    basis: str
    decisions: tuple[Decision, ...]

    @property
    def keep(self) -> tuple[str, ...]:
        return tuple(d.backup_id for d in self.decisions if d.keep)

    @property
    def forget(self) -> tuple[str, ...]:
        return tuple(d.backup_id for d in self.decisions if not d.keep)

    def rows(self) -> list[dict[str, Any]]:
        return [d.to_dict() for d in self.decisions]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "now": self.now.isoformat(),
            "policy": self.policy.to_dict(),
            "basis": self.basis,
            "backups": self.rows(),
            "keep": len(self.keep),
            "forget": len(self.forget),
        }

    def summary(self) -> str:
        """``'plan 1a2b3c4d5e6f: keep 12, forget 5 of 17 backups (7 daily, ... (UTC))'``."""
        return (
            f"plan {self.id}: keep {len(self.keep)}, forget {len(self.forget)} of "
            f"{len(self.decisions)} backups ({self.policy.describe()})"
        )

    def to_pandas(self) -> Any:
        return to_pandas(self.rows())

    def __repr__(self) -> str:
        return (
            f"<RetentionPlan {self.id} keep={len(self.keep)} forget={len(self.forget)} "
            f"now={self.now:%Y-%m-%d %H:%M:%S}Z policy={self.policy.describe()!r}>"
        )

    def _repr_html_(self) -> str:
        rows = [
            {
                "id": d.backup_id,
                "keep": "keep" if d.keep else "forget",
                "reasons": "; ".join(d.reasons),
            }
            for d in self.decisions
        ]
        return html_table(rows, caption=self.summary())


def retention_basis(backups: Iterable[BackupSet]) -> str:
    """A stable fingerprint of the backups a plan is made from: their ids, statuses and pins."""
    items = sorted((b.id, b.status.value, b.pin) for b in backups)
    return _sha256(items)[:16]


def _sha256(value: object) -> str:
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


def _newest_first(b: BackupSet) -> tuple[datetime, str]:
    return (b.created_at, b.id)


# the period a local time falls in: "2026-11-20", "2026-W47", "2026-11", "2026"
_SLOTS: tuple[tuple[str, Callable[[datetime], str]], ...] = (
    ("daily", lambda t: t.date().isoformat()),
    ("weekly", lambda t: f"{t.isocalendar().year:04d}-W{t.isocalendar().week:02d}"),
    ("monthly", lambda t: f"{t.year:04d}-{t.month:02d}"),
    ("yearly", lambda t: f"{t.year:04d}"),
)


def _slot_reasons(
    done: Sequence[BackupSet], policy: RetentionPolicy, reasons: dict[str, list[str]]
) -> None:
    """``done`` is newest first; the first backup met in a period is that period's newest, so
    periods are met in order of their newest backup, i.e. most recent first."""
    zone = policy.zone
    local = [b.created_at.astimezone(zone) for b in done]
    for name, period_of in _SLOTS:
        wanted = getattr(policy, f"keep_{name}")
        seen: set[str] = set()
        for backup, at in zip(done, local, strict=True):
            if len(seen) >= wanted:
                break
            period = period_of(at)
            if period not in seen:
                seen.add(period)
                reasons[backup.id].append(f"{name} slot {period}")


def _keep_parents(ordered: Sequence[BackupSet], reasons: dict[str, list[str]]) -> None:
    """An incremental physical backup is restored together with the backups it builds on:
    each kept one keeps its parent, and so on down to the full one (``"base of <id>"``)."""
    parents = {b.id: b.parent for b in ordered if b.parent is not None}
    for b in ordered:  # newest first: a child is seen before its parent
        parent = parents.get(b.id)
        if reasons[b.id] and parent in reasons and f"base of {b.id}" not in reasons[parent]:
            reasons[parent].append(f"base of {b.id}")


def decide_retention(
    backups: Sequence[BackupSet], policy: RetentionPolicy, *, now: datetime
) -> RetentionPlan:
    """Decide keep or forget for every backup in ``backups``, with reasons, at ``now``.

    Slots are computed in ``policy.tz``. For each of daily, weekly (ISO week), monthly and
    yearly = N: take the N most recent periods that contain at least one DONE backup, and in
    each keep the newest DONE backup (by snapshot time, ties by id: the greater id wins, as
    in the newest-first order of the decisions). "Most recent" ranks
    periods by their newest DONE backup, which is calendar order in every zone whose clocks
    never step back across midnight. Reasons: ``"daily slot 2026-11-20"``,
    ``"weekly slot 2026-W47"``, ``"monthly slot 2026-11"``, ``"yearly slot 2026"``.

    ``keep_last`` = N keeps the N newest DONE backups (``"last N"``); ``keep_within`` keeps
    every DONE backup with snapshot time >= ``now - keep_within`` (``"within 30d"``).

    Always kept, whatever the policy: a pinned backup (``"pinned: <reason>"``), the newest
    DONE backup (``"newest successful"``) and a RUNNING backup (``"running"``). FAILED and
    CANCELLED backups are forgotten unless pinned (``"not successful"``); a DONE backup
    nothing keeps is forgotten with ``"no slot"``. A kept incremental physical backup keeps
    the backups it builds on (``"base of <id>"``). A kept backup lists every reason that
    applies. Decisions are ordered newest first.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    ids = [b.id for b in backups]
    if len(set(ids)) != len(ids):
        raise ValueError("backup ids must be unique")
    now = now.astimezone(UTC)
    ordered = sorted(backups, key=_newest_first, reverse=True)
    done = [b for b in ordered if b.status is BackupStatus.DONE]
    reasons: dict[str, list[str]] = {b.id: [] for b in ordered}
    for b in ordered:
        if b.pin is not None:
            reasons[b.id].append(f"pinned: {b.pin}")
        if b.status is BackupStatus.RUNNING:
            reasons[b.id].append("running")
    if done:
        reasons[done[0].id].append("newest successful")
    for b in done[: policy.keep_last]:
        reasons[b.id].append(f"last {policy.keep_last}")
    if policy.keep_within is not None:
        cutoff = now - policy.keep_within
        label = f"within {format_duration(policy.keep_within)}"
        for b in done:
            if b.created_at >= cutoff:
                reasons[b.id].append(label)
    _slot_reasons(done, policy, reasons)
    _keep_parents(ordered, reasons)
    decisions = []
    for b in ordered:
        why = reasons[b.id]
        if why:
            decisions.append(Decision(backup_id=b.id, keep=True, reasons=tuple(why)))
        else:
            gone = "no slot" if b.status is BackupStatus.DONE else "not successful"
            decisions.append(Decision(backup_id=b.id, keep=False, reasons=(gone,)))
    basis = retention_basis(backups)
    # the id names what the plan does, not when it was made: planning again later gives the
    # same id as long as the backups and the decisions are the same (the CLI's apply does so)
    plan_id = _sha256(
        {"basis": basis, "policy": policy.to_dict(), "decisions": [d.to_dict() for d in decisions]}
    )[:12]
    return RetentionPlan(
        id=plan_id, policy=policy, now=now, basis=basis, decisions=tuple(decisions)
    )
