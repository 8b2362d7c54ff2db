"""A wall-clock watchdog that ends a run stuck inside one step.

The sim loop checks a run's wall budget between rounds and the live runner in a task of its
event loop; neither runs while the main thread is stuck in a single step (a regular expression
that backtracks catastrophically, a huge JSON to encode). ``wall_watchdog(seconds)`` arms the
real-time interval timer: when it fires, ``WallBudgetExceeded`` is raised in the main thread
wherever it is (a signal handler runs between bytecodes, and the regular-expression engine
checks for signals while it matches), so the run ends and is reported as over budget, with
where it was stuck.

The timer is shared with whatever else uses it in the process (pytest-timeout does): an alarm
already armed keeps its deadline and its handler.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

__all__ = ["WallBudgetExceeded", "Watchdog", "is_over_budget", "wall_watchdog"]


class WallBudgetExceeded(BaseException):
    """The wall budget ran out inside one step. A ``BaseException`` so that no ``except
    Exception`` on the way (a tool-call handler, an SDK) takes it for an ordinary error."""

    def __init__(self, seconds: float, where: str) -> None:
        super().__init__(f"the wall budget ({seconds:g} s) ran out inside one step, in {where}")
        self.seconds = seconds
        self.where = where


def is_over_budget(exc: BaseException) -> WallBudgetExceeded | None:
    """``exc`` itself, or the one a task group's exception group holds; else None."""
    if isinstance(exc, WallBudgetExceeded):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        found = exc.subgroup(lambda e: isinstance(e, WallBudgetExceeded))
        while isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]
        return found
    return None


def _where(frame: FrameType | None) -> str:
    """The innermost frames of the stuck step, as ``function (file:line)``."""
    if frame is None:
        return "an unknown place"
    stack = traceback.extract_stack(frame)[-3:]
    return " < ".join(f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})" for f in stack[::-1])


@dataclass(slots=True)
class Watchdog:
    """What the watchdog did: the exception it raised (None: it did not fire). Code on the
    way may have turned that exception into a failed task; the run still ended."""

    fired: WallBudgetExceeded | None = None


@contextmanager
def wall_watchdog(seconds: float, *, grace: float = 0.0) -> Iterator[Watchdog]:
    """Raise ``WallBudgetExceeded`` in the main thread once ``seconds`` (the budget) and
    ``grace`` have passed inside the block. Off the main thread (signals cannot be handled
    there), a no-op."""
    dog = Watchdog()
    if threading.current_thread() is not threading.main_thread():
        yield dog
        return
    started = time.monotonic()
    deadline = started + seconds + grace
    previous_handler = signal.getsignal(signal.SIGALRM)
    previous_left, previous_interval = signal.getitimer(signal.ITIMER_REAL)
    previous_deadline = started + previous_left if previous_left > 0 else None
    fired = False

    def arm() -> None:
        due = [d for d in (None if fired else deadline, previous_deadline) if d is not None]
        if due:
            signal.setitimer(signal.ITIMER_REAL, max(min(due) - time.monotonic(), 1e-3))

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        nonlocal fired, previous_deadline
        now = time.monotonic()
        if previous_deadline is not None and now >= previous_deadline - 1e-3:
            previous_deadline = None
            arm()
            if callable(previous_handler):
                previous_handler(signum, frame)
            return
        if not fired and now >= deadline - 1e-3:
            fired = True
            arm()
            dog.fired = WallBudgetExceeded(seconds, _where(frame))
            raise dog.fired
        arm()

    signal.signal(signal.SIGALRM, on_alarm)
    arm()
    try:
        yield dog
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_deadline is not None:
            left = max(previous_deadline - time.monotonic(), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, previous_interval)
