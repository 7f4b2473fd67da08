"""What rotating gocdnext's application key did (or, in a dry run, would do)."""

from __future__ import annotations

from typing import Any

from attrs import frozen

from gocdbackup.model.render import kv_table
from gocdbackup.model.secrets import SecretsCheck


@frozen(kw_only=True)
class RotationReport:
    old_fingerprint: str
    new_fingerprint: str
    dry_run: bool
    #: values sealed with the old key (re-sealed unless a dry run)
    to_reseal: int
    #: values actually replaced (a value changed meanwhile is left for the next run)
    resealed: int
    already: int  # already sealed with the new key (an earlier, interrupted run)
    neither: int  # open with neither key: reported, left untouched
    neither_where: tuple[str, ...] = ()
    empty: int = 0
    absent: tuple[str, ...] = ()  # encrypted columns this database does not have
    #: the full check under the new key that ends a rotation (None in a dry run)
    check: SecretsCheck | None = None

    @property
    def complete(self) -> bool:
        """Every value opens with the new key (a dry run is never complete)."""
        return self.check is not None and self.check.passed

    def describe(self) -> str:
        if self.dry_run:
            return (
                f"dry run: {self.to_reseal:,} value(s) would be re-sealed from key "
                f"{self.old_fingerprint} to {self.new_fingerprint}; {self.already:,} already "
                f"open with the new key, {self.neither:,} with neither"
            )
        text = (
            f"re-sealed {self.resealed:,} of {self.to_reseal:,} value(s) from key "
            f"{self.old_fingerprint} to {self.new_fingerprint}; {self.already:,} already open "
            f"with the new key, {self.neither:,} with neither (left untouched)"
        )
        if self.check is not None:
            text += f"; check under the new key: {self.check.verdict()}"
        return text

    def summary(self) -> dict[str, Any]:
        return {
            "old_fingerprint": self.old_fingerprint,
            "new_fingerprint": self.new_fingerprint,
            "dry_run": self.dry_run,
            "to_reseal": self.to_reseal,
            "resealed": self.resealed,
            "already": self.already,
            "neither": self.neither,
            "neither_where": list(self.neither_where),
            "empty": self.empty,
            "absent": list(self.absent),
            "complete": self.complete,
            "check": None if self.check is None else self.check.summary(),
        }

    def __repr__(self) -> str:
        return f"<RotationReport {self.describe()}>"

    def _repr_html_(self) -> str:
        pairs = [(k, v) for k, v in self.summary().items() if k != "check"]
        html = kv_table(pairs, caption="Key rotation")
        return html + (self.check._repr_html_() if self.check is not None else "")
