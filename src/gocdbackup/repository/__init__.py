"""The repository format: key slots, blob codec, chunking, manifests, stream transfer."""

from gocdbackup.repository.chunker import ChunkerParams, chunk_bytes, chunk_stream
from gocdbackup.repository.repo import Repository
from gocdbackup.repository.streams import read_range, read_stream, store_stream

__all__ = [
    "ChunkerParams",
    "Repository",
    "chunk_bytes",
    "chunk_stream",
    "read_range",
    "read_stream",
    "store_stream",
]
