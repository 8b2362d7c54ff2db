"""Confidence intervals for hit rates."""

from __future__ import annotations

import math

__all__ = ["wilson_interval"]

_Z95 = 1.959963984540054


def wilson_interval(hits: int, runs: int, *, z: float = _Z95) -> tuple[float, float]:
    """The Wilson score interval of ``hits`` in ``runs`` (95 % by default).

    Unlike the normal approximation it stays inside [0, 1] and is informative at 0 or ``runs``
    hits, which is exactly where exploration results often are.
    """
    if runs <= 0:
        return 0.0, 1.0
    p = hits / runs
    denominator = 1 + z * z / runs
    centre = (p + z * z / (2 * runs)) / denominator
    half = z * math.sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs)) / denominator
    # At 0 or ``runs`` hits the bound is exactly 0 or 1; rounding would leave a 1e-18 residue.
    low = 0.0 if hits == 0 else max(0.0, centre - half)
    high = 1.0 if hits == runs else min(1.0, centre + half)
    return low, high
