"""A read-only S3 endpoint over one sorted in-memory bucket, for listing 1,000,000 keys.

moto's ``ListObjectsV2`` collects and sorts every key of the bucket for each page it serves, so
the 1,000 pages of a 1,000,000-key bucket cost it about an hour; S3 serves a page in time
proportional to the page.  This server does the same (``bisect`` into a sorted key list) and
speaks just enough of the protocol for s3fs/botocore: ListBuckets, HeadBucket, ListObjectsV2
(``start-after``, ``continuation-token``, ``max-keys``), HeadObject and GetObject (with
``Range``).  Objects are either listed only (a key, a size, a write time: what a listing needs)
or have bytes (the inventory's own files)."""

from __future__ import annotations

import bisect
import json
import sys
import threading
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


class Bucket:
    def __init__(self, keys: list[str], sizes: list[int], written: datetime) -> None:
        self.keys = keys  # sorted
        self.sizes = sizes
        self.written = written
        self.bodies: dict[str, bytes] = {}

    def put(self, key: str, body: bytes) -> None:
        at = bisect.bisect_left(self.keys, key)
        if at < len(self.keys) and self.keys[at] == key:
            self.sizes[at] = len(body)
        else:
            self.keys.insert(at, key)
            self.sizes.insert(at, len(body))
        self.bodies[key] = body

    def size(self, key: str) -> int | None:
        at = bisect.bisect_left(self.keys, key)
        if at < len(self.keys) and self.keys[at] == key:
            return self.sizes[at]
        return None


class PageServer:
    """``with PageServer(buckets) as endpoint:`` serves ``buckets`` (name → :class:`Bucket`)."""

    def __init__(self, buckets: dict[str, Bucket]) -> None:
        self.buckets = buckets
        self.requests: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer._handle(self, head=False)

            def do_HEAD(self) -> None:
                outer._handle(self, head=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> str:
        self._thread.start()
        return self.endpoint

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _count(self, what: str) -> None:
        self.requests[what] = self.requests.get(what, 0) + 1

    def _handle(self, h: BaseHTTPRequestHandler, *, head: bool) -> None:
        url = urlsplit(h.path)
        parts = url.path.lstrip("/").split("/", 1)
        name, key = parts[0], unquote(parts[1]) if len(parts) > 1 else ""
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if name == "__requests":  # the benchmark's own question: what was asked so far
            body = json.dumps(self.requests)
            if query.get("clear"):
                self.requests.clear()
            return _send(h, 200, body)
        if not name:
            self._count("ListBuckets")
            names = "".join(f"<Bucket><Name>{b}</Name></Bucket>" for b in self.buckets)
            return _send(h, 200, f'<ListAllMyBucketsResult xmlns="{_NS}"><Buckets>{names}'
                         "</Buckets></ListAllMyBucketsResult>")  # fmt: skip
        bucket = self.buckets.get(name)
        if bucket is None:
            return _send(h, 404, "<Error><Code>NoSuchBucket</Code></Error>", head=head)
        if not key:
            if head:
                self._count("HeadBucket")
                return _send(h, 200, "", head=True)
            self._count("ListObjectsV2")
            return _send(h, 200, _page(name, bucket, query))
        size = bucket.size(key)
        self._count("HeadObject" if head else "GetObject")
        if size is None:
            return _send(h, 404, "<Error><Code>NoSuchKey</Code></Error>", head=head)
        body = bucket.bodies.get(key, b"\0" * size)
        extra = {"Last-Modified": format_datetime(bucket.written, usegmt=True), "ETag": '"e"'}
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes="):
            lo, _, hi = rng[6:].partition("-")
            start, end = int(lo), min(int(hi) if hi else len(body) - 1, len(body) - 1)
            chunk = body[start : end + 1]
            extra["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
            return _send(h, 206, chunk, head=head, extra=extra)
        return _send(h, 200, body, head=head, extra=extra)


def _page(name: str, bucket: Bucket, query: dict[str, str]) -> str:
    limit = min(int(query.get("max-keys", "1000")), 1000)
    prefix = query.get("prefix", "")
    after = query.get("continuation-token") or query.get("start-after") or ""
    start = bisect.bisect_right(bucket.keys, after) if after else 0
    if prefix:
        start = max(start, bisect.bisect_left(bucket.keys, prefix))
    keys = bucket.keys[start : start + limit + 1]
    if prefix:
        keys = [k for k in keys if k.startswith(prefix)]
    truncated = len(keys) > limit
    keys = keys[:limit]
    stamp = bucket.written.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    contents = "".join(
        f"<Contents><Key>{escape(k)}</Key><LastModified>{stamp}</LastModified>"
        f'<ETag>"e"</ETag><Size>{bucket.sizes[start + i]}</Size>'
        "<StorageClass>STANDARD</StorageClass></Contents>"
        for i, k in enumerate(keys)
    ) if not prefix else "".join(
        f"<Contents><Key>{escape(k)}</Key><LastModified>{stamp}</LastModified>"
        f'<ETag>"e"</ETag><Size>{bucket.size(k)}</Size>'
        "<StorageClass>STANDARD</StorageClass></Contents>"
        for k in keys
    )  # fmt: skip
    token = (
        f"<NextContinuationToken>{escape(keys[-1])}</NextContinuationToken>" if truncated else ""
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{_NS}">'
        f"<Name>{name}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(keys)}</KeyCount>"
        f"<MaxKeys>{limit}</MaxKeys><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
        f"{token}{contents}</ListBucketResult>"
    )


def _send(
    h: BaseHTTPRequestHandler,
    status: int,
    body: str | bytes,
    *,
    head: bool = False,
    extra: dict[str, str] | None = None,
) -> None:
    data = body.encode() if isinstance(body, str) else body
    h.send_response(status)
    h.send_header("Content-Length", str(len(data)))
    h.send_header("Content-Type", "application/xml")
    for k, v in (extra or {}).items():
        h.send_header(k, v)
    h.end_headers()
    if not head:
        h.wfile.write(data)


def main(argv: list[str]) -> None:
    """``_s3_pages.py KEYS_FILE BODIES_DIR SOURCE DEST WRITTEN``: serve SOURCE (one key a line
    of KEYS_FILE, sorted, each ``key<TAB>size``) and DEST (the files of BODIES_DIR, their
    names with ``%2F`` for ``/``) until stdin closes; print the endpoint first."""
    keys_file, bodies_dir, source, dest, written = argv
    at = datetime.fromisoformat(written)
    keys, sizes = [], []
    with open(keys_file, encoding="utf-8") as f:
        for line in f:
            key, _, size = line.rstrip("\n").rpartition("\t")
            keys.append(key)
            sizes.append(int(size))
    target = Bucket([], [], at)
    for path in sorted(Path(bodies_dir).iterdir()):
        target.put(path.name.replace("%2F", "/"), path.read_bytes())
    server = PageServer({source: Bucket(keys, sizes, at), dest: target})
    with server as endpoint:
        print(endpoint, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1:])
