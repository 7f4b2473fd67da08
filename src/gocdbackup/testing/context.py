"""What an :class:`~gocdbackup.context.OpContext` is made of, for tests: a clock that moves
only when asked, and a progress sink that keeps every event."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from gocdbackup.model.progress import ProgressEvent


class FakeClock:
    """Starts at ``start`` and moves ``step`` forward at every ``now()``."""

    def __init__(
        self, start: datetime | None = None, step: timedelta = timedelta(seconds=1)
    ) -> None:
        self.current = start or datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
        self.step = step
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            value = self.current
            self.current += self.step
            return value

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self.current += delta


class RecordingProgress:
    """A progress sink that keeps every event (``events``); optionally runs ``hook(event)``."""

    def __init__(self, hook: Any = None) -> None:
        self.events: list[ProgressEvent] = []
        self._hook = hook

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)
        if self._hook is not None:
            self._hook(event)

    def phases(self) -> list[str]:
        return list(dict.fromkeys(e.phase for e in self.events))
