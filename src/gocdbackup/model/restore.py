"""Restore outcomes and the pure comparison of row counts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from gocdbackup.model.project_secrets import SecretsRestore
from gocdbackup.model.render import kv_table
from gocdbackup.model.secrets import SecretsCheck


@frozen(kw_only=True)
class TableDiff:
    """One table whose restored row count differs from the manifest's (None = table absent)."""

    table: str
    expected: int | None
    actual: int | None

    def __str__(self) -> str:
        exp = "absent" if self.expected is None else f"{self.expected} rows"
        act = "absent" if self.actual is None else f"{self.actual} rows"
        return f"{self.table}: expected {exp}, found {act}"


def diff_tables(expected: Mapping[str, int], actual: Mapping[str, int]) -> tuple[TableDiff, ...]:
    """Every table whose count differs, or that exists on one side only, sorted by name."""
    names = sorted(set(expected) | set(actual))
    return tuple(
        TableDiff(table=n, expected=expected.get(n), actual=actual.get(n))
        for n in names
        if expected.get(n) != actual.get(n)
    )


@frozen(kw_only=True)
class RestoreReport:
    backup_id: str
    database: str
    replaced: bool
    goose_version: int | None
    tables_checked: int
    rows_checked: int
    seconds: float
    restore_seconds: float = 0.0
    warnings: tuple[str, ...] = field(default=())
    #: artefact objects written / skipped (already right) / bytes, when restored with them
    artifacts: tuple[tuple[str, int], ...] = field(default=())
    #: the decrypt check of the restored database, when restored with the application key
    secrets: SecretsCheck | None = None
    #: what restoring the backup's project Secrets (Kubernetes secrets backend) did
    kube_secrets: SecretsRestore | None = None
    #: how the database was loaded: "tables" (schema, rows table by table ``jobs`` at a time,
    #: then indexes and constraints) or "stream" (one pg_restore of the whole dump)
    method: str = "stream"
    jobs: int = 1
    #: seconds of each phase of the load: ("schema", s), ("data", s), ("post-data", s)
    phases: tuple[tuple[str, float], ...] = field(default=())
    #: pg_restore runs that loaded rows (more than the tables when large ones were cut)
    pieces: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "database": self.database,
            "replaced": self.replaced,
            "goose_version": self.goose_version,
            "tables_checked": self.tables_checked,
            "rows_checked": self.rows_checked,
            "seconds": round(self.seconds, 3),
            "method": self.method,
            "jobs": self.jobs,
            **(
                {"phases": {k: round(v, 3) for k, v in self.phases}, "pieces": self.pieces}
                if self.phases
                else {}
            ),
            "warnings": list(self.warnings),
            **({"artifacts": dict(self.artifacts)} if self.artifacts else {}),
            **({"secrets": self.secrets.summary()} if self.secrets is not None else {}),
            **(
                {"kube_secrets": self.kube_secrets.summary()}
                if self.kube_secrets is not None
                else {}
            ),
        }

    def _repr_html_(self) -> str:
        s = self.summary()
        if self.secrets is not None:
            s["secrets"] = self.secrets.verdict()
        return kv_table(s.items(), caption=f"Restore of {self.backup_id}")
