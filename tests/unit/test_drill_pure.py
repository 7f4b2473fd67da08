"""The pure parts of a drill: gocdnext's archived log format, the artefact sample, the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gocdbackup.errors import IntegrityError
from gocdbackup.gocdnext.logs import parse_archive
from gocdbackup.model.artifacts import ArtifactEntry, ObjectKind, ObjectRef, Outcome
from gocdbackup.model.drill import DrillCheck, DrillReport, DrillStep
from gocdbackup.ops.drill import sample_of

AT = "2026-11-20T00:30:01.123456789Z"


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",))), max_size=20))
def test_archived_lines_read_back_as_written(texts: list[str]) -> None:
    body = "".join(f"{n}\t{AT}\tstdout\t{escape(t)}\n" for n, t in enumerate(texts, start=1))
    lines = parse_archive(body)
    assert [line.text for line in lines] == texts
    assert [line.seq for line in lines] == list(range(1, len(texts) + 1))


@pytest.mark.parametrize(
    "bad",
    [
        "1\tyesterday\tstdout\tx",
        "x\t" + AT + "\tstdout\tx",
        "1\t" + AT + "\tstdout",
        "1\t" + AT + "\tout\t\\q",
    ],
)
def test_a_line_that_does_not_parse_is_named(bad: str) -> None:
    good = f"1\t{AT}\tstdout\tok\n"
    with pytest.raises(IntegrityError, match="line 2 of the archived log"):
        parse_archive(good + bad + "\n")


def entry(n: int, outcome: Outcome = Outcome.COPIED) -> ArtifactEntry:
    ref = ObjectRef(kind=ObjectKind.ARTIFACT, key=f"k/{n:04d}", row_id=str(n), status="ready")
    return ArtifactEntry(ref=ref, outcome=outcome)


def test_the_sample_is_spread_and_deterministic() -> None:
    entries = [entry(n) for n in range(100)] + [entry(999, Outcome.MISSING)]
    assert [e.ref.key for e in sample_of(entries, 4)] == ["k/0000", "k/0025", "k/0050", "k/0075"]
    assert len(sample_of(entries, 0.1)) == 10
    assert len(sample_of(entries, 1.0)) == 100  # every stored one, never the missing one
    assert sample_of(entries, 0) == []
    assert len(sample_of(entries, 500)) == 100


def test_the_report_passes_only_when_every_check_that_ran_passed() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    base = DrillReport(
        backup_id="b1",
        started_at=now,
        backup_taken_at=now - timedelta(hours=3),
        scratch="embedded",
        steps=(DrillStep(name="restore", seconds=2.0), DrillStep(name="teardown", seconds=1.0)),
        checks=(
            DrillCheck(name="goose", ok=True, evidence="goose 86"),
            DrillCheck(name="secrets", ok=None, evidence="no key given"),
        ),
    )
    assert base.ok
    assert base.rto_seconds == 2.0
    assert base.rpo_seconds == 3 * 3600
    assert "passed" in base.verdict()
    assert "| secrets | skipped |" in base.to_markdown()
    failing = DrillReport(
        backup_id="b1",
        started_at=now,
        backup_taken_at=now,
        scratch="embedded",
        checks=(DrillCheck(name="rows", ok=False, evidence="1 foreign key"),),
    )
    assert not failing.ok
    assert failing.failed == ("rows",)
    assert "FAILED: rows" in failing.verdict()
    nothing = DrillReport(backup_id="b1", started_at=now, backup_taken_at=now, scratch="x")
    assert not nothing.ok  # a drill that checked nothing did not pass
