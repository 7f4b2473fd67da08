"""An orphan scan of 1,000,000 keys read from a bucket inventory against the same scan listing
the bucket.

    python benchmarks/bench_inventory.py [--keys 1000000] [--files 4]

The bucket holds ``--keys`` gocdnext-shaped keys (``run/<uuid>/job/<uuid>/<uuid>``); the
database's rows (a lazy fake: nothing in memory) reference 99 % of them plus 0.1 % keys the
bucket lacks.  The inventory is an S3 Inventory in CSV (gzipped, URL-encoded keys, no header),
its records spread over ``--files`` files in shuffled order, so the scan sorts them (the
external sort spills runs to disk at this size).

Both scans run ``scan_orphans`` against the same read-only S3 endpoint
(``benchmarks/_s3_pages.py``, a process of its own, as S3 is): moto re-sorts the whole bucket
for every ListObjectsV2 page, which makes 1,000 pages of a 1,000,000-key bucket take it about
an hour, while S3 serves a page in time proportional to the page. No latency is added, which
flatters the listing: on S3 each of its 1,000 pages is a round trip of tens of milliseconds,
one after the other. The two reports must agree key for key; requests are counted on the
server.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from _common import Result, ratio, table, timed
from gocdbackup.context import OpContext
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.drivers.inventory import open_inventory
from gocdbackup.model.orphans import RowRef
from gocdbackup.ops.orphans import scan_orphans

KEYS = 1_000_000
FILES = 4
TARGET = 0.2
SOURCE, DEST = "gocdnext-artifacts", "inventories"
WRITTEN = datetime(2026, 11, 1, tzinfo=UTC)
CREDS = {"key": "bench", "secret": "bench"}


def _keys(n: int) -> list[str]:
    rnd = random.Random(17)
    return sorted(
        f"run/{uuid.UUID(int=rnd.getrandbits(128))}/job/{uuid.UUID(int=rnd.getrandbits(128))}"
        f"/{uuid.UUID(int=rnd.getrandbits(128))}"
        for _ in range(n)
    )


class LazyRows:
    """gocdnext's rows for the benchmark: 99 % of the bucket's keys, and every 1000th key
    also a row whose object is gone (a key of its own just after it)."""

    name = "gocdnext"

    def __init__(self, keys: list[str]) -> None:
        self._keys = keys

    def source_id(self) -> str:
        return "bench://gocdnext"

    def object_rows(self, start_after: str = "") -> Iterator[RowRef]:
        stamped = WRITTEN - timedelta(days=1)
        for i, key in enumerate(self._keys):
            if key <= start_after:
                continue
            if i % 100 != 37:
                yield RowRef(
                    key=key, table="artifacts", row_id=str(i), status="ready",
                    size_bytes=100 + i % 900, stamped_at=stamped,
                )  # fmt: skip
            if i % 1000 == 5:
                yield RowRef(
                    key=key + "~gone", table="artifacts", row_id=f"g{i}", status="ready",
                    size_bytes=1, stamped_at=stamped,
                )  # fmt: skip


def _inventory(keys: list[str], files: int) -> tuple[dict[str, bytes], str]:
    order = list(range(len(keys)))
    random.Random(5).shuffle(order)
    stamp = WRITTEN.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    bodies: dict[str, bytes] = {}
    entries = []
    for f in range(files):
        text = io.StringIO()
        w = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for i in order[f::files]:
            w.writerow([SOURCE, quote_plus(keys[i], safe="/"), 100 + i % 900, stamp])
        name = f"inv/{SOURCE}/daily/data/{uuid.uuid4()}.csv.gz"
        bodies[name] = gzip.compress(text.getvalue().encode(), compresslevel=6)
        entries.append({"key": name, "size": len(bodies[name]), "MD5checksum": "0" * 32})
    taken = WRITTEN + timedelta(hours=1)
    base = f"inv/{SOURCE}/daily/{taken:%Y-%m-%dT%H-%MZ}"
    manifest = {
        "sourceBucket": SOURCE,
        "destinationBucket": f"arn:aws:s3:::{DEST}",
        "creationTimestamp": str(int(taken.timestamp() * 1000)),
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate",
        "files": entries,
    }
    bodies[f"{base}/manifest.json"] = json.dumps(manifest).encode()
    return bodies, f"s3://{DEST}/{base}/manifest.json"


def _scan(db: LazyRows, store: FsspecStore, listing: Any = None) -> tuple[Any, float]:
    with timed() as t:
        report = scan_orphans(db, store, ctx=OpContext(), grace=timedelta(0), listing=listing)
    return report, t[0]


def _requests(endpoint: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{endpoint}/__requests?clear=1", timeout=30) as resp:
        out: dict[str, int] = json.loads(resp.read())
    return out


def run(
    workdir: Path, *, keys: int = KEYS, files: int = FILES
) -> tuple[list[Result], dict[str, Any]]:
    with timed() as t:
        names = _keys(keys)
        bodies, manifest_url = _inventory(names, files)
        keys_file, bodies_dir = workdir / "inventory-keys.tsv", workdir / "inventory-files"
        bodies_dir.mkdir(parents=True, exist_ok=True)
        with keys_file.open("w", encoding="utf-8") as f:
            f.writelines(f"{k}\t{100 + i % 900}\n" for i, k in enumerate(names))
        for name, body in bodies.items():
            (bodies_dir / name.replace("/", "%2F")).write_bytes(body)
    print(f"  {keys:,} keys and an inventory of {files} CSV files built in {t[0]:.1f} s")
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_s3_pages.py")), str(keys_file),
         str(bodies_dir), SOURCE, DEST, WRITTEN.isoformat()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        endpoint = server.stdout.readline().strip()
        db = LazyRows(names)
        options = {"endpoint_url": endpoint, **CREDS}
        store = FsspecStore(f"s3://{SOURCE}", options)
        _requests(endpoint)
        listed, list_s = _scan(db, store)
        list_requests = _requests(endpoint)
        inventory = open_inventory(manifest_url, store, options=options)
        from_inv, inv_s = _scan(db, store, inventory)
        inv_requests = _requests(endpoint)
    finally:
        server.communicate("")
    same = dict(listed.counts) == dict(from_inv.counts) and [
        (r.key, r.cls) for r in listed.rows()
    ] == [(r.key, r.cls) for r in from_inv.rows()]
    if not same:
        raise RuntimeError(f"the scans disagree: {dict(listed.counts)} vs {dict(from_inv.counts)}")
    counts = {k: v for k, v in from_inv.counts.items() if v}
    print(f"  both scans: {counts}")
    print(f"  listing the bucket: {list_s:.1f} s, requests {list_requests}")
    print(f"  from the inventory: {inv_s:.1f} s, requests {inv_requests}")
    n_list, n_inv = sum(list_requests.values()), sum(inv_requests.values())
    results = [
        Result(
            f"orphan scan of {keys:,} keys from an S3 inventory (CSV) ÷ listing the bucket",
            inv_s,
            list_s,
            ratio(inv_s, list_s),
            unit="s",
            target=TARGET,
            note=f"same reports; {files} gzipped CSV files in shuffled order (external sort);"
            " a constant-time S3 page server, no latency added",
        ),
        Result(
            "store requests: scan from the inventory ÷ listing the bucket",
            n_inv,
            n_list,
            ratio(n_inv, n_list),
            note=f"{n_inv} (manifest, files, a HEAD per row the inventory lacks) vs {n_list}",
        ),
    ]
    meta = {"keys": keys, "files": files, "counts": counts, "list_requests": list_requests,
            "inventory_requests": inv_requests}  # fmt: skip
    return results, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=KEYS)
    parser.add_argument("--files", type=int, default=FILES)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp:
        results, _ = run(Path(tmp), keys=args.keys, files=args.files)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
