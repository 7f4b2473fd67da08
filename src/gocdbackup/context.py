"""The operation context passed from ops down to drivers: progress, cancellation, clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from attrs import field, frozen

from gocdbackup.errors import Cancelled
from gocdbackup.model.progress import ProgressEvent

#: any one-argument callable is a progress sink
ProgressSink = Callable[[ProgressEvent], object]


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware UTC datetime."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class CancelToken:
    """Thread-safe cancellation flag, checked at every chunk or object."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(f"operation cancelled: {self.reason}")

    def __repr__(self) -> str:
        return f"<CancelToken cancelled={self.cancelled}>"


def _ignore(_event: ProgressEvent) -> None:
    return None


@frozen(kw_only=True)
class OpContext:
    progress: ProgressSink = field(default=_ignore)
    cancel: CancelToken = field(factory=CancelToken)
    clock: Clock = field(factory=SystemClock)

    @classmethod
    def using(
        cls, progress: ProgressSink | None, *, cancel: CancelToken, clock: Clock
    ) -> OpContext:
        """A context whose progress goes to ``progress`` (None: nowhere)."""
        return cls(progress=_ignore if progress is None else progress, cancel=cancel, clock=clock)

    def report(self, phase: str, done: int, total: int | None = None, **kw: str) -> None:
        self.progress(ProgressEvent(phase=phase, done=done, total=total, **kw))

    def check(self) -> None:
        self.cancel.raise_if_cancelled()

    def now(self) -> datetime:
        return self.clock.now()
