"""Verification results: per backup, and for the whole repository."""

from __future__ import annotations

from typing import Any

from attrs import field, frozen

from gocdbackup.model.render import html_table


@frozen(kw_only=True)
class BackupCheck:
    backup_id: str
    chunks: int
    chunks_read: int
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "ok": self.ok,
            "chunks": self.chunks,
            "chunks_read": self.chunks_read,
            "problems": list(self.problems),
        }

    def __str__(self) -> str:
        if self.ok:
            return (
                f"backup {self.backup_id} is intact ({self.chunks_read}/{self.chunks} chunks read)"
            )
        return f"backup {self.backup_id} is damaged: " + "; ".join(self.problems)


@frozen(kw_only=True)
class VerifyReport:
    checks: tuple[BackupCheck, ...]
    read_data_percent: float
    problems: tuple[str, ...] = field(default=())  # repository-level problems

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for c in self.checks)

    def rows(self) -> list[dict[str, Any]]:
        return [c.summary() for c in self.checks]

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "read_data_percent": self.read_data_percent,
            "problems": list(self.problems),
            "backups": self.rows(),
        }

    def _repr_html_(self) -> str:
        return html_table(self.rows(), caption="OK" if self.ok else "DAMAGED")
