"""Content-defined chunking of streams (FastCDC), so similar dumps share most chunks."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyfastcdc
from attrs import frozen

from gocdbackup.ports import DumpStream


@frozen(kw_only=True)
class ChunkerParams:
    avg_size: int = 1024 * 1024
    min_size: int = 256 * 1024
    max_size: int = 4 * 1024 * 1024


def chunk_stream(stream: DumpStream, params: ChunkerParams) -> Iterator[bytes]:
    """Cut ``stream`` into chunks; memory is bounded by ``max_size`` plus the read buffer."""
    cdc = pyfastcdc.FastCDC(params.avg_size, min_size=params.min_size, max_size=params.max_size)
    for chunk in cdc.cut_stream(stream):
        # the memoryview is only valid until the next chunk: copy it out
        yield bytes(chunk.data)


def chunk_bytes(data: bytes, params: ChunkerParams) -> Iterator[bytes]:
    """The chunks :func:`chunk_stream` would cut ``data`` into; data no longer than the
    minimum chunk size is one chunk (no cut point can fall inside it), without the cost of
    setting up the chunker, which matters for thousands of small objects."""
    if len(data) <= params.min_size:
        if data:
            yield data
        return
    yield from chunk_stream(io.BytesIO(data), params)
