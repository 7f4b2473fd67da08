"""Verification results: every damaged blob and what it breaks, per backup and for the whole
repository."""

from __future__ import annotations

import enum
from typing import Any

from attrs import field, frozen

from gocdbackup.model.render import html_table, to_pandas

#: how a report names the streams of a backup (component kinds) when one is damaged
PART_NAMES = {
    "postgres_dump": "the database dump",
    "artifact_index": "the artefact index (and so every artefact of the backup)",
}


def describe_part(kind: str) -> str:
    """``'postgres_dump'`` -> ``'the database dump'``; other kinds by name."""
    return PART_NAMES.get(kind, f"the {kind} stream")


class BlobProblem(enum.Enum):
    MISSING = "missing"  # not in the repository's listing
    WRONG_SIZE = "wrong_size"  # stored (or decrypted) with another size than recorded
    UNREADABLE = "unreadable"  # fails authentication, decompression or its id check


@frozen(kw_only=True)
class DamagedBlob:
    """One blob a backup needs that cannot be read back, and what of that backup it breaks."""

    blob_id: str
    problem: BlobProblem
    backup_id: str
    #: the backup's streams holding the blob (component kinds, e.g. ``postgres_dump``)
    parts: tuple[str, ...] = ()
    #: the artefact-store keys of the backed-up objects holding the blob
    keys: tuple[str, ...] = ()
    #: what reading it said (empty for a blob found damaged from the listing alone)
    detail: str = ""

    @property
    def breaks(self) -> tuple[str, ...]:
        """What cannot be restored without the blob: ``('the database dump',)``, or the keys
        of artefacts, caches and log archives."""
        return tuple(describe_part(p) for p in self.parts) + self.keys

    def describe(self, *, limit: int = 5) -> str:
        """``'blob 1a2b3c4d5e6f… missing: breaks the database dump'`` (at most ``limit``
        artefact keys, then how many more)."""
        breaks = self.breaks
        what = ", ".join(breaks[:limit])
        if len(breaks) > limit:
            what += f" and {len(breaks) - limit} more"
        problem = self.problem.value.replace("_", " ")
        return f"blob {self.blob_id[:12]}… {problem}: breaks {what or 'nothing known'}"

    def summary(self) -> dict[str, Any]:
        return {
            "blob_id": self.blob_id,
            "problem": self.problem.value,
            "backup_id": self.backup_id,
            "breaks": list(self.breaks),
            "parts": list(self.parts),
            "keys": list(self.keys),
            "detail": self.detail,
        }

    def row(self) -> dict[str, Any]:
        """Flat: one string per cell (for tables and DataFrames)."""
        return {
            "backup_id": self.backup_id,
            "blob_id": self.blob_id,
            "problem": self.problem.value,
            "breaks": "; ".join(self.breaks),
            "detail": self.detail,
        }

    def __str__(self) -> str:
        return self.describe()

    def __repr__(self) -> str:
        return f"<DamagedBlob {self.backup_id} {self.describe(limit=2)}>"


@frozen(kw_only=True)
class BackupCheck:
    backup_id: str
    chunks: int
    chunks_read: int
    #: one line per finding: damaged blobs counted per part, and problems no blob explains
    problems: tuple[str, ...] = field(default=())
    damaged: tuple[DamagedBlob, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems and not self.damaged

    def summary(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "ok": self.ok,
            "chunks": self.chunks,
            "chunks_read": self.chunks_read,
            "problems": list(self.problems),
            "damaged_blobs": [d.summary() for d in self.damaged],
        }

    def row(self) -> dict[str, Any]:
        """Flat: one value per cell (for tables and DataFrames)."""
        return {
            "backup_id": self.backup_id,
            "ok": self.ok,
            "chunks": self.chunks,
            "chunks_read": self.chunks_read,
            "damaged_blobs": len(self.damaged),
            "problems": "; ".join(self.problems),
        }

    def __str__(self) -> str:
        if self.ok:
            return (
                f"backup {self.backup_id} is intact ({self.chunks_read}/{self.chunks} chunks read)"
            )
        return f"backup {self.backup_id} is damaged: " + "; ".join(self.problems)

    def __repr__(self) -> str:
        read = f"{self.chunks_read}/{self.chunks} chunks read"
        if self.ok:
            return f"<BackupCheck {self.backup_id} ok: {read}>"
        found = f"{len(self.damaged)} damaged blob{_s(len(self.damaged))}"
        return f"<BackupCheck {self.backup_id} DAMAGED: {found}, {read}>"


@frozen(kw_only=True)
class VerifyReport:
    checks: tuple[BackupCheck, ...]
    read_data_percent: float
    problems: tuple[str, ...] = field(default=())  # repository-level problems

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for c in self.checks)

    @property
    def damaged(self) -> tuple[DamagedBlob, ...]:
        """Every damaged blob of every backup (a blob two backups need is listed for each)."""
        return tuple(d for c in self.checks for d in c.damaged)

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per backup checked."""
        return [c.row() for c in self.checks]

    def damaged_rows(self) -> list[dict[str, Any]]:
        """One flat row per damaged blob and backup."""
        return [d.row() for d in self.damaged]

    def to_pandas(self) -> Any:
        """:meth:`rows` as a ``pandas.DataFrame`` (needs the ``notebook`` extra)."""
        return to_pandas(self.rows())

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "read_data_percent": self.read_data_percent,
            "problems": list(self.problems),
            "backups": [c.summary() for c in self.checks],
            "damaged_blobs": [d.summary() for d in self.damaged],
        }

    def __repr__(self) -> str:
        read = sum(c.chunks_read for c in self.checks)
        total = sum(c.chunks for c in self.checks)
        backups = len(self.checks)
        chunks = f"{read}/{total} chunks read"
        if self.ok:
            return f"<VerifyReport ok: {backups} backup{_s(backups)}, {chunks}>"
        found = []
        blobs = len({d.blob_id for d in self.damaged})
        bad = sum(1 for c in self.checks if not c.ok)
        if blobs:
            found.append(f"{blobs} blob{_s(blobs)} in {bad} backup{_s(bad)}")
        elif bad:
            found.append(f"{bad} backup{_s(bad)}")
        if self.problems:
            found.append(f"{len(self.problems)} repository problem{_s(len(self.problems))}")
        return f"<VerifyReport DAMAGED: {', '.join(found)}; {chunks}>"

    def _repr_html_(self) -> str:
        caption = (
            f"OK: {len(self.checks)} backup(s), {self.read_data_percent:g} % of the data read"
            if self.ok
            else "DAMAGED"
        )
        out = html_table(self.rows(), caption=caption)
        if self.damaged:
            out += html_table(self.damaged_rows(), caption="damaged blobs")
        if self.problems:
            out += html_table([{"problem": p} for p in self.problems], caption="repository")
        return out


def _s(n: int) -> str:
    return "" if n == 1 else "s"
