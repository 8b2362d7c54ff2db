"""The common shape of a benchmark figure, and judging a figure against its target.

Every benchmark module exposes ``figures(*, quick: bool = False) -> list[Figure]``: one dict per
figure with the keys ``figure``, ``value``, ``unit``, ``baseline`` (measured in the same run, or
``None``), ``ratio`` (``value / baseline`` unless given), ``target`` and ``met``.

A target is a comparison on one of three subjects, told apart by how it is written:

- ``"<= 1.15x"``: the ratio to the baseline;
- ``"<= +150 us"``: the difference ``value - baseline`` (a ``+`` before the number);
- ``">= 500"`` or ``"<= 2.5 ms"``: the value itself (any trailing unit is for the reader).

An empty target means there is none, and ``met`` is ``None``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import NotRequired, TypedDict

__all__ = ["Figure", "judge", "make", "note_row"]


class Figure(TypedDict):
    """One row of the benchmark report (the ``--json`` object)."""

    figure: str
    value: float | None
    unit: str
    baseline: float | None
    ratio: float | None
    target: str
    met: bool | None
    # Set on rows that carry no measurement: a module that failed or reports nothing yet.
    note: NotRequired[str]


_TARGET = re.compile(r"^\s*(<=|>=|<|>)\s*(\+)?\s*(-?\d+(?:\.\d+)?)\s*(x\b)?\s*(.*)$")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}


def _parse(target: str) -> tuple[Callable[[float, float], bool], float, str]:
    """(comparison, bound, subject) where subject is "ratio", "added" or "value"."""
    match = _TARGET.match(target)
    if match is None:
        raise ValueError(f"target {target!r} is not like '<= 1.15x', '>= 500' or '<= +150 us'")
    op, plus, number, times, _unit = match.groups()
    subject = "ratio" if times else "added" if plus else "value"
    return _OPERATORS[op], float(number), subject


def judge(measured: float | None, target: str) -> bool | None:
    """Whether ``measured`` meets ``target`` (compared with the target's number, whatever its
    subject); ``None`` when there is no target or no measurement."""
    if not target.strip() or measured is None or math.isnan(measured):
        return None
    compare, bound, _ = _parse(target)
    return compare(measured, bound)


def make(
    figure: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    target: str = "",
    ratio: float | None = None,
) -> Figure:
    """A figure with its ratio (``value / baseline`` unless given) and ``met`` judged on the
    subject its target names (see the module docstring)."""
    if ratio is None and baseline:
        ratio = value / baseline
    met: bool | None = None
    if target.strip():
        _, _, subject = _parse(target)
        if subject == "ratio":
            met = judge(ratio, target)
        elif subject == "added":
            met = judge(None if baseline is None else value - baseline, target)
        else:
            met = judge(value, target)
    return Figure(
        figure=figure,
        value=value,
        unit=unit,
        baseline=baseline,
        ratio=ratio,
        target=target,
        met=met,
    )


def note_row(figure: str, note: str, *, met: bool | None = None) -> Figure:
    """A row without a measurement: ``note`` says why (an error, nothing reported)."""
    return Figure(
        figure=figure,
        value=None,
        unit="",
        baseline=None,
        ratio=None,
        target="",
        met=met,
        note=note,
    )
