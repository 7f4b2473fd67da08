"""Issue #10 (E): a second backup of an unchanged small database deduplicates its dump.

pg_dump's custom-format header holds the time the dump started; the rest of the archive of an
unchanged database is byte-identical.  A small dump used to be one chunk, header included, so
every backup stored it anew ("dedup 0%")."""

from __future__ import annotations

import time

import pytest

from gocdbackup import GocdBackup
from gocdbackup.ops.backup import DUMP_KIND
from tests.conftest import REPO_PASSWORD

pytestmark = pytest.mark.integration


def test_second_backup_of_an_unchanged_small_database_deduplicates(
    gocdnext_db: str, repo_url: str
) -> None:
    gb = GocdBackup.init(repo_url, password=REPO_PASSWORD, scrypt_n=2**12)
    first = gb.backup(gocdnext_db)
    time.sleep(1.1)  # another second in pg_dump's header timestamp
    second = gb.backup(gocdnext_db)
    dump1, dump2 = first.component(DUMP_KIND), second.component(DUMP_KIND)
    assert dump1.sha256 != dump2.sha256  # the header's timestamp differs...
    assert dump1.size_bytes == dump2.size_bytes
    measured = f"dedup {second.dedup_ratio:.4f}, stored {second.stored_bytes} bytes"
    assert second.dedup_ratio > 0.95, measured  # ...and nothing else does
    assert second.stored_bytes < 4096, measured  # the header's chunk only
    assert len(dump2.chunks) >= 2
    assert dump2.chunks[1:] == dump1.chunks[1:]
    assert gb.verify(second.id, read_data=100).ok
