"""The injected clock.

All waiting in the harness and its fake servers goes through a ``Clock``. The default
``LoopClock`` reads and sleeps on the running event loop, so under the sim loop (whose
``time()`` is virtual) a 150 s wait costs nothing, and under a normal loop it is real time.
Nothing in the harness reads ``time.time()`` or ``time.monotonic()`` for run logic.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "LoopClock", "ScaledClock"]


@runtime_checkable
class Clock(Protocol):
    """Source of run time in seconds and the way to wait on it."""

    def now(self) -> float:
        """Seconds on the run's clock (monotonic; origin is the clock's start)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of run time."""
        ...


class LoopClock:
    """Run time of the running event loop (virtual under the sim loop, real otherwise).

    ``now()`` is measured from the first reading, so journals and event logs start near 0.
    Must be used from inside a running loop.
    """

    __slots__ = ("_origin",)

    def __init__(self) -> None:
        self._origin: float | None = None

    def now(self) -> float:
        try:
            # The common case, and ~10x cheaper than anyio's backend lookup.
            current = asyncio.get_running_loop().time()
        except RuntimeError:
            current = anyio.current_time()
        if self._origin is None:
            self._origin = current
        return current - self._origin

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await anyio.sleep(seconds)
        else:
            await anyio.lowlevel.checkpoint()


class ScaledClock:
    """Scenario time on a real loop, scaled: ``now()`` and ``sleep()`` speak scenario seconds,
    and one scenario second lasts ``scale`` real seconds (live mode's ``--time-scale``: 0.01
    turns a 150 s timeout into 1.5 s).

    The clock starts at its first reading, or, made with ``held=True``, reads 0 until
    ``start()``: live mode spawns its servers first, so their start-up is not scenario time."""

    __slots__ = ("_held", "_origin", "scale")

    def __init__(self, scale: float, *, held: bool = False) -> None:
        if not scale > 0:
            raise ValueError("the time scale must be positive")
        self.scale = scale
        self._origin: float | None = None
        self._held = held

    def start(self) -> None:
        """Start the scenario's time now (a held clock read 0 until here)."""
        self._held = False
        self._origin = asyncio.get_running_loop().time()

    def now(self) -> float:
        if self._held:
            return 0.0
        current = asyncio.get_running_loop().time()
        if self._origin is None:
            self._origin = current
        return (current - self._origin) / self.scale

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await anyio.sleep(seconds * self.scale)
        else:
            await anyio.lowlevel.checkpoint()
