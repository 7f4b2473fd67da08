"""The gocdnext package: key layouts, Helm names and the tables that reference objects."""

from __future__ import annotations

import uuid

from gocdbackup.gocdnext import OBJECT_COLUMNS, Table, in_layout
from gocdbackup.gocdnext.helm import ReleaseNames, full_name
from gocdbackup.gocdnext.layouts import artifact_key, cache_key, log_archive_key


def test_every_key_gocdnext_writes_is_in_its_layouts() -> None:
    u = lambda: str(uuid.uuid4())  # noqa: E731
    assert in_layout(artifact_key(u(), u(), u()))
    assert in_layout(cache_key(u(), "ab" * 32))
    assert in_layout(log_archive_key(u()))
    assert not in_layout("exports/report.csv")
    assert not in_layout(artifact_key(u(), u(), u()) + ".part")


def test_helm_names_follow_the_chart() -> None:
    names = ReleaseNames.of("gocdnext")
    assert names.server == "gocdnext-gocdnext-server"
    assert names.postgres_pod == "gocdnext-gocdnext-postgres-0"
    assert names.artifacts_pvc == "gocdnext-gocdnext-server-artifacts"
    assert names.tokens_secret == "gocdnext-gocdnext-server-tokens"
    assert names.agent == "gocdnext-gocdnext-agent"
    long = full_name("r" * 70, "server")
    assert long == "r" * 63 + "-server"  # the base name is cut to 63 characters first


def test_the_object_columns_name_each_table_once() -> None:
    assert [c.table for c in OBJECT_COLUMNS] == list(Table)
    assert {c.column for c in OBJECT_COLUMNS} == {"storage_key", "logs_archive_uri"}
