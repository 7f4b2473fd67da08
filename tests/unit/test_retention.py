"""Retention decisions: slot semantics in a time zone, the always-kept backups, and the
invariants (never drops a pin, the newest good or a running backup; idempotent; stable)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gocdbackup.errors import ConfigError
from gocdbackup.model import BackupSet, BackupStatus, ConsistencyPoint, DatabaseInfo, Timings
from gocdbackup.model.retention import (
    Decision,
    RetentionPlan,
    RetentionPolicy,
    decide_retention,
    retention_basis,
)

DONE = BackupStatus.DONE
SLOT_NAMES = ("daily", "weekly", "monthly", "yearly")


def mk(
    backup_id: str, at: datetime, status: BackupStatus = DONE, pin: str | None = None
) -> BackupSet:
    """A minimal backup set taken at ``at``."""
    return BackupSet(
        id=backup_id,
        status=status,
        pin=pin,
        point=ConsistencyPoint(
            snapshot_at=at,
            snapshot_id="00000003-00000002-1",
            wal_lsn="0/1",
            timeline=1,
            server_version="16.4",
            server_version_num=160004,
        ),
        database=DatabaseInfo(
            name="gocdnext", owner="gocdnext", encoding="UTF8", size_bytes=0, pg_dump_version="16"
        ),
        components=(),
        timings=Timings(started_at=at, finished_at=at),
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def reasons(plan: RetentionPlan) -> dict[str, tuple[str, ...]]:
    return {d.backup_id: d.reasons for d in plan.decisions}


def slot_reasons(plan: RetentionPlan, backup_id: str) -> set[str]:
    return {r for r in reasons(plan)[backup_id] if r.split(" ")[0] in SLOT_NAMES}


# -- strategies ---------------------------------------------------------------------------------

BASE = utc(2024, 12, 1)
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
]


@st.composite
def backup_lists(draw: st.DrawFn, max_size: int = 25) -> list[BackupSet]:
    span_minutes = draw(st.sampled_from([3 * 24 * 60, 60 * 24 * 60, 3 * 366 * 24 * 60]))
    ids = draw(
        st.lists(
            st.text("0123456789abcdef", min_size=6, max_size=6), unique=True, max_size=max_size
        )
    )
    statuses = st.sampled_from([DONE, DONE, DONE, DONE, *BackupStatus])
    out = []
    for backup_id in ids:
        at = BASE + timedelta(minutes=draw(st.integers(0, span_minutes)))
        pin = draw(st.none() | st.none() | st.none() | st.just("legal hold"))
        out.append(mk(backup_id, at, draw(statuses), pin))
    return out


policies = st.builds(
    RetentionPolicy,
    keep_last=st.integers(0, 4),
    keep_daily=st.integers(0, 4),
    keep_weekly=st.integers(0, 4),
    keep_monthly=st.integers(0, 4),
    keep_yearly=st.integers(0, 3),
    keep_within=st.none() | st.timedeltas(timedelta(0), timedelta(days=40)),
    tz=st.sampled_from(ZONES),
)
nows = st.integers(-60 * 24 * 10, 3 * 366 * 24 * 60 + 60 * 24 * 10).map(
    lambda m: BASE + timedelta(minutes=m)
)


def newest_done(backups: list[BackupSet]) -> BackupSet | None:
    done = [b for b in backups if b.status is DONE]
    return max(done, key=lambda b: (b.created_at, b.id)) if done else None


# -- invariants ---------------------------------------------------------------------------------


@given(backup_lists(), policies, nows)
def test_every_backup_gets_exactly_one_decision_newest_first(
    backups: list[BackupSet], policy: RetentionPolicy, now: datetime
) -> None:
    plan = decide_retention(backups, policy, now=now)
    ids = [d.backup_id for d in plan.decisions]
    assert sorted(ids) == sorted(b.id for b in backups)
    by_id = {b.id: b for b in backups}
    keys = [(by_id[i].created_at, i) for i in ids]
    assert keys == sorted(keys, reverse=True)
    assert set(plan.keep) | set(plan.forget) == set(ids)
    assert not set(plan.keep) & set(plan.forget)
    for d in plan.decisions:
        assert d.reasons
        if not d.keep:
            expected = "no slot" if by_id[d.backup_id].status is DONE else "not successful"
            assert d.reasons == (expected,)


@given(backup_lists(), policies, nows)
def test_never_forgets_a_pin_the_newest_good_or_a_running_backup(
    backups: list[BackupSet], policy: RetentionPolicy, now: datetime
) -> None:
    plan = decide_retention(backups, policy, now=now)
    why = reasons(plan)
    forgotten = set(plan.forget)
    for b in backups:
        if b.pin is not None:
            assert b.id not in forgotten
            assert f"pinned: {b.pin}" in why[b.id]
        if b.status is BackupStatus.RUNNING:
            assert b.id not in forgotten
            assert "running" in why[b.id]
    newest = newest_done(backups)
    if newest is not None:
        assert "newest successful" in why[newest.id]
    assert [r for rs in why.values() for r in rs].count("newest successful") == (newest is not None)


@given(backup_lists(), policies, nows)
def test_re_planning_after_apply_forgets_nothing_more(
    backups: list[BackupSet], policy: RetentionPolicy, now: datetime
) -> None:
    plan = decide_retention(backups, policy, now=now)
    remaining = [b for b in backups if b.id in set(plan.keep)]
    again = decide_retention(remaining, policy, now=now)
    assert again.forget == ()
    # and for the same reasons
    assert again.decisions == tuple(d for d in plan.decisions if d.keep)


@given(backup_lists(), policies, nows, st.data())
def test_slots_are_stable_under_adding_older_backups(
    backups: list[BackupSet], policy: RetentionPolicy, now: datetime, data: st.DataObject
) -> None:
    held_back = data.draw(
        st.sets(st.sampled_from([b.id for b in backups])) if backups else st.just(set())
    )
    base = [b for b in backups if b.id not in held_back]
    before = decide_retention(base, policy, now=now)
    after = decide_retention(backups, policy, now=now)
    oldest_added = max((b.created_at for b in backups if b.id in held_back), default=None)
    by_id = {b.id: b for b in backups}
    for backup_id in before.keep:
        if oldest_added is not None and by_id[backup_id].created_at <= oldest_added:
            continue  # only backups strictly older than this one were added
        assert backup_id in after.keep
        assert slot_reasons(before, backup_id) <= slot_reasons(after, backup_id)


@given(backup_lists(), policies, nows, st.randoms(use_true_random=False))
def test_plan_id_is_deterministic(
    backups: list[BackupSet], policy: RetentionPolicy, now: datetime, rnd: random.Random
) -> None:
    plan = decide_retention(backups, policy, now=now)
    shuffled = list(backups)
    rnd.shuffle(shuffled)
    elsewhere = now.astimezone(timezone(timedelta(hours=-7)))
    assert decide_retention(shuffled, policy, now=elsewhere) == plan
    assert len(plan.id) == 12
    assert len(plan.basis) == 16
    doc = json.loads(json.dumps(plan.to_dict()))
    assert doc["id"] == plan.id
    assert doc["keep"] + doc["forget"] == len(backups)
    assert [row["id"] for row in doc["backups"]] == [d.backup_id for d in plan.decisions]


@given(backup_lists(max_size=8), policies, nows)
def test_plan_id_changes_with_the_input(
    backups: list[BackupSet], policy: RetentionPolicy, now: datetime
) -> None:
    plan = decide_retention(backups, policy, now=now)
    later = decide_retention(backups, policy, now=now + timedelta(seconds=1))
    # the id names what the plan does: the same decisions a second later are the same plan
    assert (later.id == plan.id) == (later.decisions == plan.decisions)
    extra = mk("zzzzzz", now, BackupStatus.FAILED)
    grown = decide_retention([*backups, extra], policy, now=now)
    assert grown.basis != plan.basis
    assert grown.id != plan.id


# -- slot examples ------------------------------------------------------------------------------


def test_daily_slots_are_computed_in_the_policy_time_zone() -> None:
    # 00:30 in Berlin on the 20th and on the 21st, and lunchtime on the 20th
    backups = [
        mk("night-20", utc(2026, 11, 19, 23, 30)),
        mk("noon-20", utc(2026, 11, 20, 12, 0)),
        mk("night-21", utc(2026, 11, 20, 23, 30)),
    ]
    now = utc(2026, 11, 21, 6, 0)
    berlin = decide_retention(backups, RetentionPolicy(keep_daily=2, tz="Europe/Berlin"), now=now)
    assert berlin.forget == ("night-20",)
    assert reasons(berlin)["night-21"] == ("newest successful", "daily slot 2026-11-21")
    assert reasons(berlin)["noon-20"] == ("daily slot 2026-11-20",)

    in_utc = decide_retention(backups, RetentionPolicy(keep_daily=2), now=now)
    assert in_utc.forget == ("noon-20",)
    assert reasons(in_utc)["night-21"] == ("newest successful", "daily slot 2026-11-20")
    assert reasons(in_utc)["night-20"] == ("daily slot 2026-11-19",)


def test_slots_skip_periods_without_a_successful_backup() -> None:
    backups = [
        mk("a", utc(2026, 11, 1, 1)),
        mk("b", utc(2026, 11, 10, 1)),
        mk("c", utc(2026, 11, 20, 1), BackupStatus.FAILED),
        mk("d", utc(2026, 11, 20, 2), BackupStatus.CANCELLED),
    ]
    plan = decide_retention(backups, RetentionPolicy(keep_daily=2), now=utc(2026, 11, 21))
    assert plan.keep == ("b", "a")
    assert reasons(plan)["a"] == ("daily slot 2026-11-01",)
    assert reasons(plan)["c"] == ("not successful",)


def test_the_newest_backup_of_a_period_fills_its_slot_ties_by_id() -> None:
    at = utc(2026, 11, 20, 3)
    backups = [mk("early", utc(2026, 11, 20, 1)), mk("x1", at), mk("x2", at)]
    plan = decide_retention(backups, RetentionPolicy(keep_daily=5), now=at)
    assert plan.keep == ("x2",)
    assert [d.backup_id for d in plan.decisions] == ["x2", "x1", "early"]


def test_periods_rank_by_their_newest_backup_where_clocks_step_back_across_midnight() -> None:
    # Goose Bay ended DST at 00:01 local on 2010-11-07, back to 23:01 on the 6th
    policy = RetentionPolicy(keep_daily=2, tz="America/Goose_Bay")
    first = mk("first", utc(2010, 11, 7, 3, 0))  # 00:00 on the 7th, local
    second = mk("second", utc(2010, 11, 7, 3, 30))  # 23:30 on the 6th, local, but later
    third = mk("third", utc(2010, 11, 8, 12, 0))
    now = utc(2010, 11, 9)
    before = decide_retention([second, third], policy, now=now)
    assert reasons(before)["second"] == ("daily slot 2010-11-06",)
    after = decide_retention([first, second, third], policy, now=now)
    assert reasons(after)["second"] == ("daily slot 2010-11-06",)
    assert after.forget == ("first",)


def test_iso_weeks_start_on_monday() -> None:
    backups = [
        mk("sat", utc(2026, 11, 21, 12)),
        mk("sun", utc(2026, 11, 22, 12)),
        mk("mon", utc(2026, 11, 23, 12)),
    ]
    plan = decide_retention(backups, RetentionPolicy(keep_weekly=2), now=utc(2026, 11, 24))
    assert plan.forget == ("sat",)
    assert reasons(plan)["sun"] == ("weekly slot 2026-W47",)
    assert reasons(plan)["mon"] == ("newest successful", "weekly slot 2026-W48")


def test_sunday_night_utc_is_monday_in_berlin() -> None:
    backups = [mk("sun", utc(2026, 11, 22, 12)), mk("late", utc(2026, 11, 22, 23, 30))]
    now = utc(2026, 11, 24)
    berlin = decide_retention(backups, RetentionPolicy(keep_weekly=1, tz="Europe/Berlin"), now=now)
    assert reasons(berlin)["late"] == ("newest successful", "weekly slot 2026-W48")
    assert (
        decide_retention(
            backups, RetentionPolicy(keep_weekly=2, tz="Europe/Berlin"), now=now
        ).forget
        == ()
    )
    assert decide_retention(backups, RetentionPolicy(keep_weekly=2), now=now).forget == ("sun",)


def test_iso_year_differs_from_calendar_year_at_new_year() -> None:
    backups = [
        mk("2025-12-28", utc(2025, 12, 28, 12)),  # Sunday: 2025-W52
        mk("2025-12-29", utc(2025, 12, 29, 12)),  # Monday: already 2026-W01
        mk("2026-12-31", utc(2026, 12, 31, 12)),  # Thursday: 2026-W53
        mk("2027-01-02", utc(2027, 1, 2, 12)),  # Saturday: still 2026-W53
        mk("2027-01-04", utc(2027, 1, 4, 12)),  # Monday: 2027-W01
    ]
    now = utc(2027, 1, 5)
    weekly = decide_retention(backups, RetentionPolicy(keep_weekly=4), now=now)
    assert weekly.forget == ("2026-12-31",)
    assert reasons(weekly)["2027-01-02"] == ("weekly slot 2026-W53",)
    assert reasons(weekly)["2025-12-29"] == ("weekly slot 2026-W01",)
    assert reasons(weekly)["2025-12-28"] == ("weekly slot 2025-W52",)

    yearly = decide_retention(backups, RetentionPolicy(keep_yearly=3, keep_monthly=1), now=now)
    assert reasons(yearly)["2027-01-04"] == (
        "newest successful",
        "monthly slot 2027-01",
        "yearly slot 2027",
    )
    assert reasons(yearly)["2026-12-31"] == ("yearly slot 2026",)
    assert reasons(yearly)["2025-12-29"] == ("yearly slot 2025",)
    assert yearly.forget == ("2027-01-02", "2025-12-28")


def test_keep_within_keeps_every_successful_backup_since_the_cutoff() -> None:
    now = utc(2026, 11, 20, 12)
    backups = [mk(f"h{h:02d}", now - timedelta(hours=h)) for h in range(0, 12, 2)]
    backups.append(mk("failed", now - timedelta(hours=1), BackupStatus.FAILED))
    plan = decide_retention(backups, RetentionPolicy(keep_within=timedelta(hours=6)), now=now)
    assert plan.keep == ("h00", "h02", "h04", "h06")  # the cutoff itself is inside
    assert reasons(plan)["h06"] == ("within 6h",)
    assert reasons(plan)["failed"] == ("not successful",)
    assert reasons(plan)["h08"] == ("no slot",)


def test_keep_last_counts_successful_backups_only() -> None:
    now = utc(2026, 11, 20, 12)
    backups = [mk(f"b{h}", now - timedelta(hours=h)) for h in range(1, 6)]
    backups.append(mk("running", now, BackupStatus.RUNNING))
    backups.append(mk("cancelled", now - timedelta(minutes=30), BackupStatus.CANCELLED))
    plan = decide_retention(backups, RetentionPolicy(keep_last=3), now=now)
    assert plan.keep == ("running", "b1", "b2", "b3")
    assert reasons(plan)["b1"] == ("newest successful", "last 3")
    assert reasons(plan)["b3"] == ("last 3",)
    assert reasons(plan)["running"] == ("running",)
    assert plan.forget == ("cancelled", "b4", "b5")


def test_an_empty_policy_keeps_only_the_always_kept() -> None:
    now = utc(2026, 11, 20)
    backups = [
        mk("old-pinned-failure", now - timedelta(days=9), BackupStatus.FAILED, pin="audit"),
        mk("old", now - timedelta(days=8)),
        mk("pinned", now - timedelta(days=7), pin="legal hold"),
        mk("newest", now - timedelta(days=1)),
        mk("now", now, BackupStatus.RUNNING),
    ]
    plan = decide_retention(backups, RetentionPolicy(), now=now)
    assert plan.forget == ("old",)
    assert reasons(plan)["pinned"] == ("pinned: legal hold",)
    assert reasons(plan)["old-pinned-failure"] == ("pinned: audit",)
    assert reasons(plan)["newest"] == ("newest successful",)


def test_no_backups_gives_an_empty_plan() -> None:
    plan = decide_retention([], RetentionPolicy(keep_daily=7), now=utc(2026, 11, 20))
    assert plan.decisions == ()
    assert plan.keep == plan.forget == ()
    assert plan.basis == retention_basis([])


def test_now_must_be_aware_and_ids_unique() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide_retention([], RetentionPolicy(), now=datetime(2026, 11, 20))
    at = utc(2026, 11, 20)
    with pytest.raises(ValueError, match="unique"):
        decide_retention([mk("a", at), mk("a", at)], RetentionPolicy(), now=at)


# -- the policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "utc", "", "../etc/passwd", "Europe"])
def test_a_bad_time_zone_is_a_config_error(tz: str) -> None:
    with pytest.raises(ConfigError, match="unknown time zone"):
        RetentionPolicy(keep_daily=7, tz=tz)


@pytest.mark.parametrize(
    "name", ["keep_last", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"]
)
def test_negative_counts_are_config_errors(name: str) -> None:
    kwargs: dict[str, Any] = {name: -1}
    with pytest.raises(ConfigError, match=f"{name} must be a whole number >= 0"):
        RetentionPolicy(**kwargs)


def test_negative_keep_within_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="keep_within"):
        RetentionPolicy(keep_within=timedelta(seconds=-1))


def test_policy_describes_itself() -> None:
    policy = RetentionPolicy(
        keep_last=3, keep_daily=7, keep_weekly=4, keep_within=timedelta(days=30)
    )
    assert policy.describe() == "last 3, 7 daily, 4 weekly, within 30d (UTC)"
    assert policy.to_dict() == {
        "keep_last": 3,
        "keep_daily": 7,
        "keep_weekly": 4,
        "keep_monthly": 0,
        "keep_yearly": 0,
        "keep_within": "30d",
        "tz": "UTC",
    }
    assert "nothing beyond" in RetentionPolicy(tz="Europe/Berlin").describe()
    assert str(RetentionPolicy(tz="Europe/Berlin").zone) == "Europe/Berlin"


# -- presentation -------------------------------------------------------------------------------


def test_plan_reads_well_in_a_notebook() -> None:
    now = utc(2026, 11, 20, 12)
    backups = [
        mk("new", now - timedelta(hours=1)),
        mk("old", now - timedelta(days=3)),
        mk("<held>", now - timedelta(days=4), pin="legal hold"),
    ]
    plan = decide_retention(backups, RetentionPolicy(keep_daily=1), now=now)
    assert repr(plan).startswith(f"<RetentionPlan {plan.id} keep=2 forget=1 now=2026-11-20 12:00")
    assert plan.summary() == f"plan {plan.id}: keep 2, forget 1 of 3 backups (1 daily (UTC))"
    assert plan.rows()[1] == {"id": "old", "keep": False, "reasons": ["no slot"]}
    html = plan._repr_html_()
    assert "&lt;held&gt;" in html
    assert "pinned: legal hold" in html
    assert "forget" in html
    assert plan.to_dict()["now"] == "2026-11-20T12:00:00+00:00"
    assert plan.to_dict()["policy"]["keep_daily"] == 1
    assert Decision(backup_id="x", keep=True, reasons=("a",)).to_dict() == {
        "id": "x",
        "keep": True,
        "reasons": ["a"],
    }


def test_a_kept_incremental_keeps_the_chain_it_builds_on() -> None:
    import attrs

    full = mk("a-full", utc(2026, 11, 1))
    inc1 = attrs.evolve(mk("b-inc1", utc(2026, 11, 2)), parent="a-full")
    inc2 = attrs.evolve(mk("c-inc2", utc(2026, 11, 3)), parent="b-inc1")
    other = mk("d-full", utc(2026, 10, 1))
    plan = decide_retention(
        [full, inc1, inc2, other], RetentionPolicy(keep_last=1), now=utc(2026, 11, 4)
    )
    got = reasons(plan)
    assert plan.keep == ("c-inc2", "b-inc1", "a-full")
    assert got["b-inc1"] == ("base of c-inc2",)
    assert got["a-full"] == ("base of b-inc1",)
    assert plan.forget == ("d-full",)
