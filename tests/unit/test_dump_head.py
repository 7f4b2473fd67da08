"""Issue #10 (E): the dump's header is a chunk of its own, so a header that changes with every
dump (pg_dump's start time) does not spoil the chunk after it."""

from __future__ import annotations

import io
import random

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from gocdbackup.context import OpContext
from gocdbackup.model.manifest import Manifest
from gocdbackup.ops import restore_backup, take_backup, verify_repository
from gocdbackup.ops.backup import DUMP_HEAD_BYTES, DUMP_KIND
from gocdbackup.repository import ChunkerParams, Repository, chunk_bytes, chunk_stream, store_stream
from gocdbackup.testing import FakePostgres
from gocdbackup.testing import fake_dump as make_fake_dump

PARAMS = ChunkerParams(avg_size=16 * 1024, min_size=8 * 1024, max_size=32 * 1024)


class Trickle(io.RawIOBase):
    """A pipe: ``read(n)`` returns at most ``step`` bytes."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        data = self._data.read(min(len(buf), self._step))
        buf[: len(data)] = data
        return len(data)


@given(
    st.integers(min_value=0, max_value=3 * 16 * 1024),
    st.integers(min_value=0, max_value=9),
    st.sampled_from([0, 1, 100, 1024, 9000]),
)
@settings(max_examples=80, deadline=None)
def test_chunk_bytes_cuts_exactly_as_chunk_stream_with_a_head(
    size: int, seed: int, head: int
) -> None:
    data = random.Random(seed).randbytes(size)
    chunks = list(chunk_stream(io.BytesIO(data), PARAMS, head=head))
    assert list(chunk_bytes(data, PARAMS, head=head)) == chunks
    assert b"".join(chunks) == data
    assert all(chunks)
    if head and data:
        assert chunks[0] == data[:head]
        # after the head, content-defined chunking as if the stream started there
        assert chunks[1:] == list(chunk_stream(io.BytesIO(data[head:]), PARAMS))


@given(st.integers(min_value=1, max_value=5000), st.integers(min_value=0, max_value=3))
@settings(max_examples=30, deadline=None)
def test_the_head_is_read_whole_from_a_pipe(step: int, seed: int) -> None:
    data = random.Random(seed).randbytes(70_000)
    chunks = list(chunk_stream(Trickle(data, step), PARAMS, head=1024))
    assert chunks == list(chunk_bytes(data, PARAMS, head=1024))


def test_a_changed_header_spoils_only_the_head() -> None:
    body = random.Random(1).randbytes(6 * 1024)  # smaller than the minimum chunk
    one = b"PGDMP\x01\x10\x00\x04\x08\x01\x00\x00\x06" + body
    two = b"PGDMP\x01\x10\x00\x04\x08\x01\x00\x00\x07" + body
    assert list(chunk_bytes(one, PARAMS)) == [one]  # without a head: one chunk, never shared
    assert list(chunk_bytes(two, PARAMS)) == [two]
    a = list(chunk_bytes(one, PARAMS, head=DUMP_HEAD_BYTES))
    b = list(chunk_bytes(two, PARAMS, head=DUMP_HEAD_BYTES))
    assert a[0] != b[0]
    assert a[1:] == b[1:]
    assert len(a) == 2


def test_the_dump_starts_with_its_head_chunk(
    repo: Repository, db: FakePostgres, ctx: OpContext
) -> None:
    backup = take_backup(repo, db, ctx=ctx)
    dump = backup.component(DUMP_KIND)
    assert dump.chunks[0].size_bytes == DUMP_HEAD_BYTES


def test_a_backup_chunked_without_a_head_still_restores_and_dedups(
    repo: Repository, db: FakePostgres, ctx: OpContext
) -> None:
    """Chunk boundaries are no part of the format: a backup of an earlier version (its dump
    cut by content from the first byte) restores, and the next backup shares its chunks."""
    new = take_backup(repo, db, ctx=ctx)
    data = make_fake_dump(db.databases["gocdnext"])
    old_dump = store_stream(
        repo,
        chunk_stream(io.BytesIO(data), repo.chunker),  # no head
        kind=DUMP_KIND,
        known=repo.blob_sizes(),
        ctx=ctx,
    )
    assert old_dump.sha256 == new.component(DUMP_KIND).sha256
    assert old_dump.chunks[0].size_bytes != DUMP_HEAD_BYTES
    old = attrs.evolve(new, id=new.id[:-6] + "01d000", components=(old_dump,))
    repo.write_manifest(Manifest(backup=old))
    assert verify_repository(repo, ctx=ctx, backup_id=old.id, read_data_percent=100).ok
    restore_backup(repo, db, old.id, confirm=old.id, ctx=ctx, target="restored")
    assert db.databases["restored"].tables == db.databases["gocdnext"].tables
    # after the first content-defined cut, both ways of cutting agree again
    shared = {c.blob_id for c in old_dump.chunks} & {c.blob_id for c in new.components[0].chunks}
    assert sum(c.size_bytes for c in old_dump.chunks if c.blob_id in shared) > 0.8 * len(data)
