"""``wal stream``: the WAL archived over the replication protocol (pg_receivewal through a
replication slot), each completed segment pushed into the repository as soon as it is
received, and on stop (Ctrl-C, SIGTERM, ``stop.set()``) the partial segment too."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path

from attrs import frozen

from gocdbackup._facade import GocdBackup
from gocdbackup.drivers.postgres import PostgresServer
from gocdbackup.drivers.postgres.receivewal import create_slot, receiving, slot_retained_bytes
from gocdbackup.errors import ConfigError
from gocdbackup.model.wal import check_wal_name
from gocdbackup.ops.wal import push_wal

log = logging.getLogger("gocdbackup.wal_stream")

DEFAULT_SLOT = "gocdbackup"
#: warn when the slot makes the server keep more WAL than this (a stream that fell behind)
DEFAULT_MAX_RETAINED = 1024 * 1024 * 1024
_SLOT_CHECK_SECONDS = 30.0


@frozen(kw_only=True)
class WalStreamReport:
    segments: int  # completed segments pushed
    partial: str | None  # the partial segment pushed at the stop
    seconds: float

    def summary(self) -> dict[str, object]:
        return {"segments": self.segments, "partial": self.partial, "seconds": self.seconds}


def stream_wal(
    gb: GocdBackup,
    db: str | PostgresServer,
    *,
    slot: str = DEFAULT_SLOT,
    spool: str | None = None,
    stop: threading.Event | None = None,
    max_retained: int = DEFAULT_MAX_RETAINED,
    poll_seconds: float = 0.5,
) -> WalStreamReport:
    """Stream the WAL of the server ``db`` names into the repository until ``stop`` is set (or
    Ctrl-C); then push the partial segment and return.  ``spool`` (default: a private
    temporary directory) holds each segment only until it is pushed."""
    server = gb.database(db)
    if not isinstance(server, PostgresServer):
        raise ConfigError("streaming WAL needs a PostgreSQL server (a DSN); nothing was done")
    stop = stop or threading.Event()
    started = time.monotonic()
    own_spool = spool is None
    directory = Path(spool or tempfile.mkdtemp(prefix="gocdbackup-wal-spool-"))
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    pushed = 0
    partial = None
    try:
        create_slot(server, slot)
        next_check = 0.0
        with receiving(server, slot, directory) as receiver:
            try:
                while not stop.is_set():
                    pushed += _push_completed(gb, directory)
                    failure = receiver.failed()
                    if failure is not None:
                        raise failure
                    if time.monotonic() >= next_check:
                        _warn_if_behind(server, slot, max_retained)
                        next_check = time.monotonic() + _SLOT_CHECK_SECONDS
                    stop.wait(poll_seconds)
            except KeyboardInterrupt:
                log.info("stopping: Ctrl-C")
            receiver.stop()
        pushed += _push_completed(gb, directory)
        partial = _push_partial(gb, directory)
    finally:
        if own_spool:
            shutil.rmtree(directory, ignore_errors=True)
    return WalStreamReport(segments=pushed, partial=partial, seconds=time.monotonic() - started)


def _push_completed(gb: GocdBackup, directory: Path) -> int:
    """Push and remove every completed file in the spool, oldest first."""
    done = 0
    for path in sorted(directory.iterdir()):
        if path.name.endswith(".partial") or path.name.startswith("."):
            continue
        check_wal_name(path.name)
        push_wal(gb.repository, path.name, path.read_bytes(), ctx=gb.context())
        path.unlink()
        done += 1
    return done


def _push_partial(gb: GocdBackup, directory: Path) -> str | None:
    partials = sorted(p for p in directory.iterdir() if p.name.endswith(".partial"))
    if not partials:
        return None
    newest = partials[-1]
    push_wal(gb.repository, newest.name, newest.read_bytes(), ctx=gb.context())
    return newest.name


def _warn_if_behind(server: PostgresServer, slot: str, limit: int) -> None:
    retained = slot_retained_bytes(server, slot)
    if retained is not None and retained > limit:
        log.warning(
            "replication slot %s makes the server keep %d MiB of WAL (more than %d MiB): the "
            "stream is behind, or stopped; drop the slot if it is no longer used",
            slot,
            retained // (1024 * 1024),
            limit // (1024 * 1024),
        )


__all__ = ["DEFAULT_SLOT", "WalStreamReport", "stream_wal"]
