"""Oracle registry: a name maps to a function from a ``RunRecord`` to a ``Verdict``.

An oracle declares the evidence it reads (``needs``, names from ``record.EVIDENCE``). When the
record lacks one (a bare trace has no API journal or final answers), ``check`` answers
"cannot judge" with what is missing instead of calling the oracle: a verdict without its
evidence is never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.errors import ConfigError
from harness.oracles.record import EVIDENCE, RunRecord

__all__ = ["NEEDS", "ORACLES", "Oracle", "Verdict", "check", "oracle"]

Status = Literal["holds", "fails", "cannot judge"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """An oracle's answer: does the invariant hold, why (one sentence), and the evidence.

    ``judged`` is false when the record lacked what the oracle needs: then ``holds`` is
    false too and the sentence says what was missing."""

    name: str
    holds: bool
    explanation: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    judged: bool = True

    @classmethod
    def cannot_judge(cls, name: str, missing: str) -> Verdict:
        return cls(name, False, f"cannot judge: {missing}", judged=False)

    @property
    def status(self) -> Status:
        if not self.judged:
            return "cannot judge"
        return "holds" if self.holds else "fails"

    @property
    def fails(self) -> bool:
        """Judged, and the invariant was broken."""
        return self.judged and not self.holds

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.status,
            "explanation": self.explanation,
            "evidence": self.evidence,
        }


Oracle = Callable[[RunRecord], Verdict]

ORACLES: dict[str, Oracle] = {}
NEEDS: dict[str, tuple[str, ...]] = {}


def oracle(name: str, *, needs: Iterable[str] = ()) -> Callable[[Oracle], Oracle]:
    """Register an oracle under ``name`` (the name scenario files use); ``needs`` names the
    evidence it reads (keys of ``harness.oracles.record.EVIDENCE``)."""
    required = tuple(needs)
    unknown = [n for n in required if n not in EVIDENCE]
    if unknown:
        raise ValueError(f"oracle {name!r} needs unknown evidence {unknown}")

    def register(fn: Oracle) -> Oracle:
        if name in ORACLES:
            raise ValueError(f"oracle {name!r} is registered twice")
        ORACLES[name] = fn
        NEEDS[name] = required
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
    verdicts = []
    for name in names:
        missing = [record.missing[n] for n in NEEDS.get(name, ()) if n in record.missing]
        if missing:
            verdicts.append(Verdict.cannot_judge(name, "; ".join(dict.fromkeys(missing))))
        else:
            verdicts.append(ORACLES[name](record))
    return verdicts
