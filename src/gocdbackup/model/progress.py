"""Progress events: what long-running operations tell any one-argument callable."""

from __future__ import annotations

from attrs import frozen


@frozen(kw_only=True)
class ProgressEvent:
    """``done`` of ``total`` ``unit`` in ``phase`` (``total`` is None when unknown)."""

    phase: str  # "dump", "verify", "restore", "fetch", ...
    done: int = 0
    total: int | None = None
    unit: str = "bytes"
    message: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)
