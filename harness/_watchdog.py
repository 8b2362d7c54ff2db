"""A wall-clock watchdog that ends a run stuck inside one step.

The sim loop checks a run's wall budget between rounds and the live runner in a task of its
event loop; neither runs while the main thread is stuck in a single step (a regular expression
that backtracks catastrophically, a huge JSON to encode). ``wall_watchdog`` arms the real-time
interval timer: from the budget on, every ``grace`` seconds it asks ``progress()`` (the event
loop's step count, a heartbeat) whether the loop moved; when it did not, it raises
``WallBudgetExceeded`` in the main thread wherever it is (a signal handler runs between
bytecodes, and the regular-expression engine checks for signals while it matches), so the run
ends and is reported as over budget, with where it was stuck. A loop that still moves (one
winding down after its own budget check stopped it) is left alone.

The timer is shared with whatever else uses it in the process (pytest-timeout does): an alarm
already armed keeps its deadline and its handler.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

__all__ = ["WallBudgetExceeded", "Watchdog", "is_over_budget", "wall_watchdog"]


class WallBudgetExceeded(KeyboardInterrupt):
    """The wall budget ran out inside one step.

    A ``KeyboardInterrupt`` because the event loop treats it as one: an exception raised in a
    callback or task step goes straight out of the loop, instead of being logged and dropped
    (asyncio) or taken for an ordinary error (``except Exception`` in a tool-call handler, an
    SDK). The runners catch it before anything that stops on Ctrl-C could see it."""

    def __init__(self, seconds: float, where: str) -> None:
        super().__init__(f"the wall budget ({seconds:g} s) ran out inside one step, in {where}")
        self.seconds = seconds
        self.where = where

    def __str__(self) -> str:
        return str(self.args[0])


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
    """What the watchdog did: the exception it last raised (None: it did not fire). Code on
    the way may have turned that exception into a failed task; the run still ended."""

    fired: WallBudgetExceeded | None = None


_UNSEEN = object()


@contextmanager
def wall_watchdog(
    seconds: float, *, grace: float, progress: Callable[[], object]
) -> Iterator[Watchdog]:
    """Raise ``WallBudgetExceeded`` in the main thread when, ``seconds`` (the budget) into the
    block or later, ``progress()`` has not changed for ``grace`` seconds. Off the main thread
    (signals cannot be handled there), a no-op."""
    dog = Watchdog()
    if threading.current_thread() is not threading.main_thread():
        yield dog
        return
    started = time.monotonic()
    check_at = started + seconds
    seen: object = _UNSEEN
    previous_handler = signal.getsignal(signal.SIGALRM)
    previous_left, previous_interval = signal.getitimer(signal.ITIMER_REAL)
    previous_deadline = started + previous_left if previous_left > 0 else None

    def arm() -> None:
        due = min(d for d in (check_at, previous_deadline) if d is not None)
        signal.setitimer(signal.ITIMER_REAL, max(due - time.monotonic(), 1e-3))

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        nonlocal check_at, seen, previous_deadline
        now = time.monotonic()
        if previous_deadline is not None and now >= previous_deadline - 1e-3:
            previous_deadline = None
            arm()
            if callable(previous_handler):
                previous_handler(signum, frame)
            return
        if now < check_at - 1e-3:
            arm()
            return
        current, last = progress(), seen
        seen, check_at = current, now + grace
        arm()
        if current == last:
            dog.fired = WallBudgetExceeded(seconds, _where(frame))
            raise dog.fired

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
