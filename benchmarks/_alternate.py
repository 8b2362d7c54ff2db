"""Measuring sides alternately: every ratio in the report is taken this way.

Each round measures every side once, in an order that rotates from round to round (so no side
always runs first after the machine was idle, or last when it is warm); a ratio is the median
of the per-round ratios, so drift of a shared machine between rounds cancels.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Mapping

from benchmarks._figures import Figure, make

__all__ = ["Samples", "alternate", "alternate_async", "compared", "per_round_ratio"]

Samples = dict[str, list[float]]


def _orders(sides: list[str], rounds: int) -> list[list[str]]:
    return [sides[r % len(sides) :] + sides[: r % len(sides)] for r in range(rounds)]


def alternate(sides: Mapping[str, Callable[[], float]], rounds: int, *, warmup: int = 1) -> Samples:
    """What each side's callable returns, one sample per round; ``warmup`` untimed rounds
    first."""
    samples: Samples = {side: [] for side in sides}
    for index, order in enumerate(_orders(list(sides), warmup + rounds)):
        for side in order:
            value = sides[side]()
            if index >= warmup:
                samples[side].append(value)
    return samples


async def alternate_async(
    sides: Mapping[str, Callable[[], Awaitable[float]]], rounds: int, *, warmup: int = 1
) -> Samples:
    """``alternate`` for sides that are coroutines."""
    samples: Samples = {side: [] for side in sides}
    for index, order in enumerate(_orders(list(sides), warmup + rounds)):
        for side in order:
            value = await sides[side]()
            if index >= warmup:
                samples[side].append(value)
    return samples


def per_round_ratio(samples: Mapping[str, list[float]], side: str, base: str) -> float:
    """Median over the rounds of ``side / base``."""
    return statistics.median(
        ours / theirs for ours, theirs in zip(samples[side], samples[base], strict=True)
    )


def compared(
    figure: str,
    samples: Mapping[str, list[float]],
    side: str,
    base: str,
    unit: str,
    *,
    scale: float = 1.0,
    target: str = "",
) -> Figure:
    """A row: the medians of ``side`` and ``base`` (times ``scale``) and their per-round
    ratio."""
    return make(
        figure,
        statistics.median(samples[side]) * scale,
        unit,
        baseline=statistics.median(samples[base]) * scale,
        ratio=per_round_ratio(samples, side, base),
        target=target,
    )
