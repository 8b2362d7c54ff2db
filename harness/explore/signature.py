"""Failure signatures: which oracle decided a failing run, and the shape of its evidence.

Two failing seeds share a signature when the same oracles fail and the deciding oracle's
evidence names the same things (servers, reasons, tools, agents, stop reasons), whatever the
times and sequence numbers. One replay command per signature is then enough to see each
distinct way the scenario fails.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.oracles import Verdict

__all__ = ["deciding_failure", "signature_of"]


def deciding_failure(verdicts: Sequence[Verdict], preferred: Sequence[str]) -> Verdict | None:
    """The failing verdict that names the failure: the first of ``preferred`` (the scenario's
    bug oracles) that fails, else the first failing one, else None."""
    failing = {v.name: v for v in verdicts if v.fails}
    for name in preferred:
        if name in failing:
            return failing[name]
    return next(iter(failing.values()), None)


def signature_of(verdicts: Sequence[Verdict], deciding: Verdict) -> str:
    """``oracle[other failing oracles]{key=value,...}`` from the evidence's text fields."""
    others = [v.name for v in verdicts if v.fails and v.name != deciding.name]
    shape = sorted(
        {
            f"{key}={value}"
            for item in deciding.evidence
            for key, value in item.items()
            if isinstance(value, str) and len(value) <= 60
        }
    )
    text = deciding.name
    if others:
        text += f"[+{','.join(others)}]"
    if shape:
        text += "{" + ",".join(shape) + "}"
    return text
