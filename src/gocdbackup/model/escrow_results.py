"""What escrowing the application key did, the escrows a store holds, and a key recovered from
an escrow.  None of them shows the key: it is kept out of reprs, summaries and tables."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from attrs import field, frozen

from gocdbackup.model.render import kv_table, to_pandas


@frozen(kw_only=True)
class EscrowResult:
    """One escrow of the key: where the envelope went (``location``, None without ``to=``),
    who can open it, and the paper form's text when one was asked for (``paper``: it holds
    the key, so it is in no repr and no summary; ``paper_file`` is where it was written)."""

    fingerprint: str
    written_at: datetime
    location: str | None = None
    name: str | None = None
    passphrase: bool = False
    recipients: tuple[str, ...] = ()
    paper: str | None = field(default=None, repr=False)
    paper_file: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "written_at": self.written_at.isoformat(),
            "location": self.location,
            "passphrase": self.passphrase,
            "recipients": list(self.recipients),
            "paper": self.paper is not None,
            "paper_file": self.paper_file,
        }

    def rows(self) -> list[dict[str, Any]]:
        return [self.summary()]

    def _repr_html_(self) -> str:
        return kv_table(self.summary().items(), caption=f"escrow of key {self.fingerprint}")

    def to_pandas(self) -> Any:
        return to_pandas(self.rows())


@frozen(kw_only=True)
class EscrowEntry:
    """One escrow envelope in a store, as its name tells (the envelope is not opened)."""

    name: str
    fingerprint: str
    written_at: datetime
    size_bytes: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "written_at": self.written_at.isoformat(),
            "size_bytes": self.size_bytes,
        }


@frozen(kw_only=True)
class RecoveredKey:
    """The application key read back from an escrow (``source``: the envelope's location, or
    ``"paper"``), its fingerprint (checked) and the UTC date the escrow was written.
    ``skipped`` names the newer escrows of the same key that did not open, and why."""

    key: bytes = field(repr=False)
    fingerprint: str
    written: date
    source: str
    skipped: tuple[str, ...] = ()

    def key_text(self) -> str:
        """The key as ``GOCDNEXT_SECRET_KEY`` holds it: 64 lower-case hex characters."""
        return self.key.hex()

    def summary(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "written": self.written.isoformat(),
            "source": self.source,
            "skipped": list(self.skipped),
        }

    def _repr_html_(self) -> str:
        return kv_table(self.summary().items(), caption=f"recovered key {self.fingerprint}")
