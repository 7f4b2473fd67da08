"""What copying a backup into a second repository did."""

from __future__ import annotations

from typing import Any

from attrs import frozen

from gocdbackup.model.backup import BackupSet


@frozen(kw_only=True)
class CopyResult:
    backup: BackupSet  # as stored in the target
    already_there: bool
    blobs_written: int
    bytes_written: int

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.backup.id,
            "already_there": self.already_there,
            "blobs_written": self.blobs_written,
            "bytes_written": self.bytes_written,
            "size_bytes": self.backup.size_bytes,
        }
