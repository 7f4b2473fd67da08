"""What a runbook leaves undone is visible: recent rows are recovered without waiting for the
grace window, held-back rows say when to run again, an empty or missing store is told apart
from a full one (against the public fakes)."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import timedelta

import pytest

from gocdbackup.context import OpContext
from gocdbackup.errors import EmptyStore, StoreNotFound
from gocdbackup.model.artifacts import ObjectKind, ObjectRef
from gocdbackup.model.cleanup import plan_cleanup, plan_recovery
from gocdbackup.model.orphan_report import describe_report, row_from_dict, row_to_dict
from gocdbackup.model.orphans import OrphanClass, OrphanRow, RowRef
from gocdbackup.model.render import html_table
from gocdbackup.ops import take_backup
from gocdbackup.ops.orphans import scan_orphans
from gocdbackup.ops.recovery import retire_missing
from gocdbackup.ops.runbooks import lost_bucket, lost_database
from gocdbackup.repository import Repository
from gocdbackup.testing import (
    FakeClock,
    FakeDatabaseContents,
    FakeGocdnext,
    FakePostgres,
    MemoryStore,
)


def art_key() -> str:
    return f"run/{uuid.uuid4()}/job/{uuid.uuid4()}/{uuid.uuid4()}"


class Install:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.store = MemoryStore("memory://gocdnext-artifacts", clock=clock)
        self.fake = FakeDatabaseContents(tables={"public.runs": 1})
        self.pg = FakePostgres("gocdnext", {"gocdnext": self.fake})
        self.db = FakeGocdnext(self.pg, clock=clock)
        self.data: dict[str, bytes] = {}

    def ctx(self) -> OpContext:
        return OpContext(clock=self.clock)

    def artefact(self, status: str = "ready", *, with_object: bool = True) -> str:
        key, data = art_key(), os.urandom(500)
        if with_object:
            self.store.write(key, data)
        self.data[key] = data
        sha = hashlib.sha256(data).hexdigest()
        row = RowRef(
            key=key,
            table="artifacts",
            row_id=str(uuid.uuid4()),
            status=status,
            size_bytes=len(data),
            sha256=sha,
            stamped_at=self.clock.now(),
        )
        self.fake.rows.append(row)
        self.fake.objects.append(
            ObjectRef(
                kind=ObjectKind.ARTIFACT,
                key=key,
                row_id=row.row_id,
                status=status,
                size_bytes=len(data),
                sha256=sha,
            )
        )
        return key


@pytest.fixture
def install(clock: FakeClock) -> Install:
    return Install(clock)


def test_recent_rows_come_back_without_waiting_for_the_grace_window(
    install: Install, repo: Repository
) -> None:
    keys = [install.artefact() for _ in range(4)]
    take_backup(repo, install.pg, gocdnext=install.db, ctx=install.ctx(), artifacts=install.store)
    for key in keys:
        install.store.delete(key)  # lost minutes after the backup
    install.clock.advance(timedelta(minutes=20))
    report = lost_bucket(install.db, install.store, repo, ctx=install.ctx())
    assert all(install.store.read(k) == install.data[k] for k in keys)
    assert report.complete
    assert report.outstanding == ()
    assert "recovered 4 object(s)" in report.steps[1].text


def test_what_no_backup_holds_is_held_back_with_the_time_to_run_again(
    install: Install, repo: Repository
) -> None:
    install.artefact()  # the store is not empty
    take_backup(repo, install.pg, gocdnext=install.db, ctx=install.ctx(), artifacts=install.store)
    young = install.artefact(with_object=False)  # written after the backup, object lost
    stamped = install.clock.now()
    install.clock.advance(timedelta(minutes=5))
    report = lost_bucket(install.db, install.store, repo, ctx=install.ctx())
    assert not report.complete
    (held,) = report.outstanding
    assert (held.kind, held.count, held.keys) == ("held_back", 1, (young,))
    assert held.retry_after is not None  # the row's stamp plus the grace window
    assert abs(held.retry_after - (stamped + timedelta(hours=6))) < timedelta(seconds=5)
    assert report.confirm_id is None  # nothing may be retired yet
    assert report.summary()["complete"] is False

    install.clock.advance(timedelta(hours=7))
    later = lost_bucket(install.db, install.store, repo, ctx=install.ctx())
    (pending,) = later.outstanding
    assert (pending.kind, pending.confirm_id) == ("confirm", later.confirm_id)
    done = lost_bucket(install.db, install.store, repo, ctx=install.ctx(), confirm=later.confirm_id)
    assert done.complete


def test_plan_recovery_takes_ready_rows_of_any_age_and_never_pending_ones(
    install: Install,
) -> None:
    old = install.artefact(with_object=False)
    install.clock.advance(timedelta(days=1))
    young = install.artefact(with_object=False)
    install.artefact("pending", with_object=False)  # an upload in flight
    report = scan_orphans(install.db, install.store, ctx=install.ctx())
    assert {i.key for i in plan_recovery(report).items} == {old, young}
    assert {i.key for i in plan_cleanup(report, rows=True).items} == {old}  # grace kept


def test_a_store_that_does_not_exist_is_an_error(install: Install) -> None:
    install.store.exists_location = False
    with pytest.raises(StoreNotFound, match="does not exist"):
        scan_orphans(install.db, install.store, ctx=install.ctx())


def test_rows_are_not_retired_against_an_empty_store_without_the_flag(
    install: Install,
) -> None:
    install.artefact(with_object=False)
    install.clock.advance(timedelta(days=1))
    report = scan_orphans(install.db, install.store, ctx=install.ctx())
    assert report.store_empty
    assert "EMPTY" in describe_report(report)
    assert "EMPTY STORE" in repr(report)
    plan = plan_cleanup(report, rows=True)
    with pytest.raises(EmptyStore, match="allow_empty_store=True"):
        retire_missing(plan, install.db, install.store, ctx=install.ctx(), confirm=plan.id)
    assert install.fake.rows[0].status == "ready"
    done = retire_missing(
        plan, install.db, install.store, ctx=install.ctx(), confirm=plan.id, allow_empty_store=True
    )
    assert done["retired"] == 1


def test_lost_database_names_recent_objects_and_rows_it_cannot_help(install: Install) -> None:
    install.artefact(with_object=False)  # a row whose object the sweeper removed
    install.clock.advance(timedelta(days=1))
    fresh = art_key()
    install.store.write(fresh, b"uploaded after the dump")  # no row: too recent to judge
    report = lost_database(install.db, install.store, ctx=install.ctx())
    kinds = {o.kind: o for o in report.outstanding}
    assert set(kinds) == {"held_back", "rows_without_objects"}
    assert kinds["held_back"].keys == (fresh,)
    assert not report.complete


def test_row_side_flag_round_trips_and_old_reports_still_read() -> None:
    row = OrphanRow(key="k", cls=OrphanClass.TOO_RECENT, table="artifacts", has_object=False)
    assert row_from_dict(row_to_dict(row)) == row
    legacy = {"key": "k", "class": "too_recent", "table": "artifacts", "status": "ready"}
    assert row_from_dict(legacy).has_object is False
    legacy["modified_at"] = "2026-11-20T00:00:00+00:00"
    assert row_from_dict(legacy).has_object is True


def test_tables_show_nested_values_as_text_not_python() -> None:
    html = html_table([{"counts": {"copied": 3, "reused": 2}, "keys": ["a", "b"], "ok": True}])
    assert "{" not in html
    assert "[" not in html
    assert "&#x27;" not in html
    assert "copied: 3, reused: 2" in html
    assert "a, b" in html
