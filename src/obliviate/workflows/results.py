"""What ``evaluate`` and ``audit`` return to a Python caller: their results.json, named.

``Results`` is that document as a ``dict`` (so ``results["splits"]["forget"]`` and every
caller written for the plain document keep working, ``json.dumps`` included), with the
parts a reader wants first as attributes: where the run is, the verdict, and a few
headline figures. Its ``repr`` is the verdict's line, not the whole document, so a
notebook does not print thousands of per-example rows.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any


class Results(dict[str, Any]):
    """An evaluation's or audit's results.json (see ``docs/evaluation.md``)."""

    @property
    def out(self) -> Path:
        """The published run directory (results.json, report.html, report.md)."""
        return Path(self["out"])

    @property
    def verdict(self) -> dict[str, Any]:
        """results.json's ``verdict``: ``passed``, ``forgotten``, ``collateral``, ``line``."""
        return self.get("verdict") or {}

    @property
    def passed(self) -> bool | None:
        """Forgotten and no collateral damage (None where either was not measured)."""
        return self.verdict.get("passed")

    @property
    def forgotten(self) -> bool | None:
        """Whether every forgetting check passed (None where none was measured)."""
        return (self.verdict.get("forgotten") or {}).get("passed")

    @property
    def forget_accuracy(self) -> float | None:
        """Share of forget questions answered right (an evaluation's; None in an audit)."""
        return ((self.get("splits") or {}).get("forget") or {}).get("accuracy")

    @property
    def forget_quality(self) -> float | None:
        """TOFU's forget quality against the oracle (a KS p-value; None without one)."""
        return self.get("forget_quality")

    @property
    def model_utility(self) -> float | None:
        """TOFU's model utility (an evaluation's; None in an audit)."""
        return self.get("model_utility")

    @property
    def worst_case(self) -> dict[str, Any] | None:
        """The attack variant that brought back the most (an audit's; None otherwise)."""
        return self.get("worst_case")

    def to_dict(self) -> dict[str, Any]:
        """A plain, independent copy of the document."""
        return copy.deepcopy(dict(self))

    def __repr__(self) -> str:
        return f"Results(out={self.get('out')!r}, verdict={self.verdict.get('line')!r})"
