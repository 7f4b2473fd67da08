"""Every ``.to_pandas()``: a DataFrame with pandas, and without it a ConfigError that names the
``notebook`` extra.  pandas is made absent the way Python itself knows it: ``None`` in
``sys.modules`` (an import of it then fails), not by patching gocdbackup's code."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from typing import Any

import pytest

from gocdbackup import ConfigError, GocdBackup, Reconciler, RetentionPolicy
from gocdbackup.model.render import to_pandas
from gocdbackup.testing import (
    FakeClock,
    FakeDatabaseContents,
    FakeGocdnext,
    FakePostgres,
    MemoryStore,
)

HAVE_PANDAS = importlib.util.find_spec("pandas") is not None


def _values() -> dict[str, Callable[[], Any]]:
    """A real value of every class with ``to_pandas()``, made through the public API."""
    clock = FakeClock()
    db = FakePostgres("gocdnext", {"gocdnext": FakeDatabaseContents(tables={"public.runs": 3})})
    gb = GocdBackup.init(MemoryStore(clock=clock), password="pw", scrypt_n=2**10, clock=clock)
    backup = gb.backup(db)
    store = MemoryStore(clock=clock)
    store.write("run/1/job/2/stray", b"no row references this")
    return {
        "BackupSet": backup.to_pandas,
        "BackupList": gb.list_backups().to_pandas,
        "RetentionPlan": gb.plan_retention(RetentionPolicy(keep_last=1)).to_pandas,
        "OrphanReport": Reconciler(FakeGocdnext(db, clock=clock), store, clock=clock)
        .scan(grace="0s")
        .to_pandas,
    }


@pytest.fixture
def no_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)


@pytest.mark.usefixtures("no_pandas")
def test_the_helper_names_the_extra_without_pandas() -> None:
    with pytest.raises(ConfigError) as caught:
        to_pandas([{"a": 1}])
    assert "pip install 'gocdbackup[notebook]'" in str(caught.value)
    assert isinstance(caught.value.__cause__, ImportError)


@pytest.mark.usefixtures("no_pandas")
@pytest.mark.parametrize("name", sorted(_values()))
def test_every_to_pandas_names_the_extra_without_pandas(name: str) -> None:
    call = _values()[name]
    with pytest.raises(ConfigError, match=r"gocdbackup\[notebook\]") as caught:
        call()
    assert isinstance(caught.value.__cause__, ImportError)


@pytest.mark.skipif(not HAVE_PANDAS, reason="pandas is not installed (the notebook extra)")
@pytest.mark.parametrize("name", sorted(_values()))
def test_every_to_pandas_gives_a_dataframe(name: str) -> None:
    import pandas as pd

    frame = _values()[name]()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) > 0


@pytest.mark.skipif(not HAVE_PANDAS, reason="pandas is not installed (the notebook extra)")
def test_the_helper_keeps_rows_and_columns() -> None:
    frame = to_pandas([{"table": "runs", "rows": 3}, {"table": "jobs", "rows": 9}])
    assert list(frame.columns) == ["table", "rows"]
    assert frame["rows"].tolist() == [3, 9]
