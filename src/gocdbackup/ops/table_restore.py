"""Loading a dump with a recorded layout into a staging database in three phases: the schema,
then every table's rows ``jobs`` at a time (a large table cut into pieces loaded side by
side), each streamed from the repository into its own ``pg_restore``, then the indexes,
constraints and triggers with ``pg_restore -j``.  Each table's rows are counted as soon as it
is loaded, while others still load.

Only the table of contents is ever written to a local file (for ``pg_restore -j``); rows go
from the repository through memory into pg_restore's stdin, every chunk authenticated and
checked against its id as it is read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from attrs import frozen

from gocdbackup.context import OpContext
from gocdbackup.errors import Cancelled, IntegrityError, ToolFailed
from gocdbackup.model.archive_layout import ArchiveLayout, frame_boundary
from gocdbackup.model.backup import Component
from gocdbackup.model.pg_archive import (
    ArchiveTruncated,
    ArchiveUnsupported,
    block_header,
    end_frame,
    read_toc,
)
from gocdbackup.model.restore_plan import (
    CUT_WINDOW_BYTES,
    Piece,
    RestorePlan,
    TableLoad,
    cut_targets,
    pieces_of,
    plan_restore,
)
from gocdbackup.ports import Postgres
from gocdbackup.repository import Repository, read_range

log = logging.getLogger("gocdbackup.ops.restore")

#: finds a frame boundary in a stretch of a data block: (bytes, from, int size) -> offset
Boundary = Callable[[bytes, int, int], "int | None"]


@frozen(kw_only=True)
class TablesLoaded:
    """What :func:`load_by_tables` did."""

    counted: dict[str, int]  # "schema.table" -> rows, counted right after loading
    phases: tuple[tuple[str, float], ...]
    pieces: int


def load_by_tables(
    repo: Repository,
    db: Postgres,
    component: Component,
    staging: str,
    *,
    role: str | None,
    min_tool_version: str,
    jobs: int,
    ctx: OpContext,
    boundary: Boundary = frame_boundary,
) -> TablesLoaded | None:
    """Load ``component`` (a dump with a layout) into the empty database ``staging``; None
    (and nothing done) if this dump must be restored as one stream instead.

    A large table is cut where ``boundary`` finds a frame boundary near each planned cut.
    Should a piece of a cut table fail to load, the table is emptied and loaded whole once
    the other pieces are done (only a failure of that load fails the restore)."""
    layout = component.layout
    assert layout is not None
    toc_bytes = b"".join(read_range(repo, component.chunks, 0, layout.toc_end, ctx))
    try:
        toc = read_toc(toc_bytes)
    except (ArchiveTruncated, ArchiveUnsupported) as exc:
        raise IntegrityError(
            f"the dump's table of contents does not read ({exc or 'it ends early'}); "
            "the target was not touched"
        ) from exc
    plan = plan_restore(toc, layout)
    if isinstance(plan, str):
        log.info("restoring the dump as one stream: %s", plan)
        return None
    loader = _Loader(
        repo=repo,
        db=db,
        component=component,
        layout=layout,
        toc=toc_bytes,
        staging=staging,
        ctx=ctx,
        role=role,
        min_tool_version=min_tool_version,
        jobs=jobs,
        boundary=boundary,
    )
    return loader.run(plan)


class _Loader:
    def __init__(
        self,
        *,
        repo: Repository,
        db: Postgres,
        component: Component,
        layout: ArchiveLayout,
        toc: bytes,
        staging: str,
        ctx: OpContext,
        role: str | None,
        min_tool_version: str,
        jobs: int,
        boundary: Boundary,
    ) -> None:
        self.repo, self.db, self.component, self.layout = repo, db, component, layout
        self.toc, self.staging, self.ctx = toc, staging, ctx
        self.role, self.min_tool_version, self.jobs = role, min_tool_version, jobs
        self.boundary = boundary
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._remaining: dict[str, int] = {}
        self._failed: dict[str, ToolFailed] = {}
        self._counted: dict[str, int] = {}
        self._done_bytes = 0
        self._total_bytes = 0
        self._tables = 0

    def run(self, plan: RestorePlan) -> TablesLoaded:
        ctx = self.ctx
        started = ctx.now()
        ctx.report("restore", 0, None, message="schema")
        self._restore_part("pre-data")
        schema_done = ctx.now()
        pieces = self._load_data(plan)
        data_done = ctx.now()
        ctx.report("restore", self._done_bytes, self._total_bytes, message="indexes, constraints")
        self._restore_part("post-data", jobs=self.jobs)
        finished = ctx.now()
        phases = (
            ("schema", (schema_done - started).total_seconds()),
            ("data", (data_done - schema_done).total_seconds()),
            ("post-data", (finished - data_done).total_seconds()),
        )
        return TablesLoaded(counted=dict(self._counted), phases=phases, pieces=pieces)

    def _restore_part(
        self, section: str, objects: tuple[str, tuple[str, ...]] | None = None, jobs: int = 1
    ) -> None:
        self.ctx.check()
        self.db.restore_part(
            [self.toc],
            self.staging,
            role=self.role,
            min_tool_version=self.min_tool_version,
            section=section,
            objects=objects,
            jobs=jobs,
        )

    # -- the data phase ------------------------------------------------------------------------

    def _load_data(self, plan: RestorePlan) -> int:
        pieces: list[Piece] = []
        for table in plan.tables:
            mine = pieces_of(table, self._cuts(table) if self.jobs > 1 else [])
            self._remaining[table.name] = len(mine)
            pieces += mine
        pieces.sort(key=lambda p: p.size, reverse=True)
        self._total_bytes, self._tables = plan.data_bytes, len(plan.tables)
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="gocdbackup-load") as pool:
            futures: list[Future[None]] = [pool.submit(self._load_piece, p) for p in pieces]
            futures += [
                pool.submit(self._restore_part, "data", objects) for objects in plan.sequences
            ]
            try:
                for future in as_completed(futures):
                    future.result()
            except BaseException:
                self._stop.set()  # those running stop at their next chunk
                for future in futures:  # those not started never start
                    future.cancel()
                raise
        return len(pieces)

    def _cuts(self, table: TableLoad) -> list[int]:
        """Frame boundaries near the planned cuts of ``table``'s block."""
        cuts: list[int] = []
        block = table.block
        for target in cut_targets(block, self.jobs):
            end = min(target + CUT_WINDOW_BYTES, block.end)
            window = b"".join(read_range(self.repo, self.component.chunks, target, end, self.ctx))
            found = self.boundary(window, 0, self.layout.int_size)
            if found is not None and (not cuts or target + found > cuts[-1]):
                cuts.append(target + found)
        return cuts

    def _load_piece(self, piece: Piece) -> None:
        table = piece.table
        split = not (piece.first and piece.last)
        try:
            self._feed(self._stream(piece), table)
        except ToolFailed as exc:
            if not split or self._stop.is_set():
                raise
            with self._lock:  # a piece of a cut table: the table is loaded whole below
                self._failed.setdefault(table.name, exc)
        with self._lock:
            self._remaining[table.name] -= 1
            finished = self._remaining[table.name] == 0
        if finished:
            self._finish(table)

    def _finish(self, table: TableLoad) -> None:
        failed = self._failed.get(table.name)
        if failed is not None:
            log.warning(
                "table %s: a piece failed to load (%s); loading the table whole",
                table.name,
                "; ".join(failed.messages) or failed,
            )
            self.db.empty_table(self.staging, table.entry.namespace, table.entry.tag)
            whole = Piece(table=table, start=table.block.start, end=table.block.end)
            self._feed(self._stream(whole, progress=False), table)
        rows = self.db.count_rows(self.staging, table.entry.namespace, table.entry.tag)
        with self._lock:
            self._counted[table.name] = rows
            tables_done = len(self._counted)
            done = self._done_bytes
        self.ctx.report(
            "restore", done, self._total_bytes, message=f"{tables_done}/{self._tables} tables"
        )

    def _feed(self, parts: Iterator[bytes], table: TableLoad) -> None:
        self.db.restore_part(
            parts,
            self.staging,
            role=self.role,
            min_tool_version=self.min_tool_version,
            section="data",
            objects=(table.entry.namespace, (table.entry.tag,)),
        )

    def _stream(self, piece: Piece, *, progress: bool = True) -> Iterator[bytes]:
        """pg_restore's input for ``piece``: the table of contents, then the piece's frames
        (made a whole data block by a header before and an end after, where it lacks them)."""
        isz = self.layout.int_size
        yield self.toc
        if not piece.first:
            yield block_header(piece.table.entry.dump_id, isz)
        chunks = read_range(self.repo, self.component.chunks, piece.start, piece.end, self.ctx)
        for data in chunks:
            if self._stop.is_set():
                raise Cancelled("another part of the restore failed")
            self.ctx.check()
            yield data
            if progress:
                with self._lock:
                    self._done_bytes += len(data)
                    done, tables_done = self._done_bytes, len(self._counted)
                self.ctx.report(
                    "restore",
                    done,
                    self._total_bytes,
                    message=f"{tables_done}/{self._tables} tables",
                )
        if not piece.last:
            yield end_frame(isz)
