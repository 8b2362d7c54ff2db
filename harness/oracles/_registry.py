"""Oracle registry: a name maps to a function from a ``RunRecord`` to a ``Verdict``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.oracles.record import RunRecord

__all__ = ["ORACLES", "Oracle", "Verdict", "check", "oracle"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """An oracle's answer: does the invariant hold, why (one sentence), and the evidence."""

    name: str
    holds: bool
    explanation: str
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": "holds" if self.holds else "fails",
            "explanation": self.explanation,
            "evidence": self.evidence,
        }


Oracle = Callable[[RunRecord], Verdict]

ORACLES: dict[str, Oracle] = {}


def oracle(name: str) -> Callable[[Oracle], Oracle]:
    """Register an oracle under ``name`` (the name scenario files use)."""

    def register(fn: Oracle) -> Oracle:
        if name in ORACLES:
            raise ValueError(f"oracle {name!r} is registered twice")
        ORACLES[name] = fn
        return fn

    return register


def check(record: RunRecord, names: list[str]) -> list[Verdict]:
    """Run the named oracles in order; an unknown name is a ``ConfigError``."""
    unknown = [n for n in names if n not in ORACLES]
    if unknown:
        raise ConfigError(
            f"unknown oracle; choose from {', '.join(sorted(ORACLES))}",
            field="oracles",
            value=unknown,
        )
    return [ORACLES[name](record) for name in names]
