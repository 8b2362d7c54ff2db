"""Bounds that hold on a busy machine: scale a requirement by how loaded the machine is now.

A requirement like "stops within 3 s of the signal" is about the product on an ordinary
machine. A shared CI machine with every core busy runs everything two or three times slower,
and a fixed bound would then fail for the machine's sake. ``slowdown()`` measures, right now,
how much longer a fixed CPU-bound loop takes in wall time than in CPU time: 1.0 on an idle
machine, 2.5 when the loop gets 40 % of a core. A test bounds by ``scaled(3.0)``.
"""

from __future__ import annotations

import time

__all__ = ["scaled", "slowdown"]


def slowdown(cpu_seconds: float = 0.25) -> float:
    """Wall time over CPU time of a busy loop of ``cpu_seconds`` in this thread (at least 1)."""
    wall = time.perf_counter()
    cpu = time.thread_time()
    total = 0
    while time.thread_time() - cpu < cpu_seconds:
        for i in range(20_000):
            total += i
    used = time.thread_time() - cpu
    return max(1.0, (time.perf_counter() - wall) / used)


def scaled(seconds: float) -> float:
    """``seconds`` stretched by the machine's ``slowdown()`` measured now."""
    return seconds * slowdown()
