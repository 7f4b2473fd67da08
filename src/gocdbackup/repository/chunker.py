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


def chunk_stream(stream: DumpStream, params: ChunkerParams, *, head: int = 0) -> Iterator[bytes]:
    """Cut ``stream`` into chunks; memory is bounded by ``max_size`` plus the read buffer.

    With ``head``, the stream's first ``head`` bytes are a chunk of their own and the rest is
    cut by content from there: for a header that differs in every stream (pg_dump's holds the
    time the dump started), so that it does not spoil the chunk after it.
    """
    if head > 0:
        first = _read_exactly(stream, head)
        if first:
            yield first
        if len(first) < head:
            return  # the whole stream was shorter than the head
    cdc = pyfastcdc.FastCDC(params.avg_size, min_size=params.min_size, max_size=params.max_size)
    for chunk in cdc.cut_stream(stream):
        # the memoryview is only valid until the next chunk: copy it out
        yield bytes(chunk.data)


def chunk_bytes(data: bytes, params: ChunkerParams, *, head: int = 0) -> Iterator[bytes]:
    """The chunks :func:`chunk_stream` would cut ``data`` into; data no longer than the
    minimum chunk size is one chunk (no cut point can fall inside it), without the cost of
    setting up the chunker, which matters for thousands of small objects."""
    if head > 0:
        if data[:head]:
            yield data[:head]
        data = data[head:]
    if len(data) <= params.min_size:
        if data:
            yield data
        return
    yield from chunk_stream(io.BytesIO(data), params)


def _read_exactly(stream: DumpStream, n: int) -> bytes:
    """``n`` bytes of ``stream`` (fewer only at its end): a pipe's ``read`` may return less."""
    out = bytearray()
    while len(out) < n:
        data = stream.read(n - len(out))
        if not data:
            break
        out += data
    return bytes(out)
