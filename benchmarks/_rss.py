"""Peak memory of the current process, as the benchmark children measure it (Linux)."""

from __future__ import annotations

from pathlib import Path

_STATUS = Path("/proc/self/status")


def status_kib(field: str) -> int:
    """A ``/proc/self/status`` value in KiB, e.g. ``VmHWM`` (the peak resident size)."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (``VmHWM``); False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True
