"""Sorting more items than fit in memory: runs of ``run_size`` items sorted in memory and
spilled to temporary files, then merged (``heapq.merge``) in one streaming pass.  Peak memory is
one run plus one block per spilled run, whatever the input's length.  Used for a bucket
inventory's records (``drivers/inventory.py``) and for the blob ids garbage collection keeps."""

from __future__ import annotations

import heapq
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

T = TypeVar("T")

#: records sorted in memory at once (about 150 MB of short tuples at 1,000,000)
RUN_SIZE = 1_000_000
#: records read back from a spilled run at a time
_BLOCK = 4096


def sorted_records(records: Iterable[T], *, run_size: int = RUN_SIZE) -> Iterator[T]:
    """``records`` (strings, or tuples compared key first) in ascending order.  An input that
    fits in one run is sorted in memory; a longer one spills sorted runs to temporary files,
    which are deleted when the iterator ends or is closed."""
    if run_size < 1:
        raise ValueError("run_size must be at least 1")
    spilled: list[IO[bytes]] = []
    run: list[Any] = []
    try:
        for record in records:
            if len(run) >= run_size:  # spilled only once more than a run has come
                spilled.append(_spill(run))
                run = []
            run.append(record)
        run.sort()
        if not spilled:
            yield from run
            return
        if run:
            spilled.append(_spill(run))
            run = []
        yield from heapq.merge(*(_read_back(f) for f in spilled))
    finally:
        for f in spilled:
            f.close()


def _spill(run: list[Any]) -> IO[bytes]:
    run.sort()
    f = tempfile.TemporaryFile(prefix="gocdbackup-sort-")  # noqa: SIM115 - closed by the caller
    for start in range(0, len(run), _BLOCK):
        pickle.dump(run[start : start + _BLOCK], f, protocol=pickle.HIGHEST_PROTOCOL)
    f.seek(0)
    return f


def _read_back(f: IO[bytes]) -> Iterator[Any]:
    while True:
        try:
            block = pickle.load(f)  # noqa: S301 - our own temporary file, written above
        except EOFError:
            return
        yield from block
