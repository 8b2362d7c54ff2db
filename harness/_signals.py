"""SIGTERM and SIGHUP stop a command the way Ctrl-C does.

Every command already stops cleanly on SIGINT (``KeyboardInterrupt``, or asyncio's own SIGINT
handler cancelling the run): runs in progress are marked interrupted and written, processes and
temporary files are cleaned up, summaries are printed. A service manager's SIGTERM, a closed
terminal's SIGHUP or ``timeout(1)`` must get the same, not a death on the spot that leaves a
half-done run, orphaned servers and temporary directories. ``stop_signals()`` makes SIGTERM and
SIGHUP call whatever handles SIGINT at that moment, and remembers the first signal, so the
command exits ``128 + N`` for the signal ``N`` that stopped it (130 for SIGINT, 143 for
SIGTERM, 129 for SIGHUP).

A shell starts a background job with SIGINT ignored, which the interpreter keeps; the command
then could not be stopped with ``kill -INT``. The default SIGINT handling is restored here.

A ``KeyboardInterrupt`` raised while the interpreter runs a weakref callback or a ``__del__``
(garbage collection runs them at any point) is printed and dropped by Python, and the command
would go on. Such a dropped interrupt is caught here (``sys.unraisablehook``) and remembered:
the commands' loops call ``check_stop()`` between units of work (a run, a seed), which raises
it again, so no signal is ever lost.

Code a SIGINT lands in may turn its ``KeyboardInterrupt`` into an error of its own (pydantic
does while it builds a validator, during a command's imports). The interpreter writes each
signal's number to a wakeup file descriptor, whatever handles it: ``signalled()`` reads it, so
the entry point knows such an error is an interrupt. (The handler itself stays Python's own,
which asyncio's runner requires before it turns Ctrl-C into a cancellation of the run.)
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

__all__ = [
    "INTERRUPTED",
    "Stop",
    "check_stop",
    "deferred_interrupts",
    "is_interrupt",
    "signalled",
    "stop_signals",
]

# The exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 128 + signal.SIGINT

_FORWARDED = (signal.SIGTERM, signal.SIGHUP)


@dataclass(slots=True)
class Stop:
    """Which stop signal arrived first (None: none yet), and whether an interrupt was dropped
    by the interpreter instead of stopping the command."""

    signum: int | None = None
    dropped: bool = False
    wakeup: int | None = None  # read end of the interpreter's wakeup fd, while it is ours

    def exit_status(self, status: int) -> int:
        """``status``, with an interrupted exit (130) told apart by the signal that caused it."""
        if status == INTERRUPTED and self.signum is not None:
            return 128 + self.signum
        return status


_current: Stop | None = None


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C: a ``KeyboardInterrupt``, or a task group's exception group
    that holds one (the signal landed in a task while its group was open)."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(lambda e: isinstance(e, KeyboardInterrupt)) is not None
    return False


def signalled() -> bool:
    """Whether a stop signal arrived since the command began (as far as can be seen: a
    library that takes the wakeup fd over, for its own signal handlers, hides later ones)."""
    stop = _current
    if stop is None:
        return False
    if stop.signum is None and stop.wakeup is not None:
        try:
            numbers = os.read(stop.wakeup, 4096)
        except BlockingIOError:
            numbers = b""
        if signal.SIGINT in numbers:
            stop.signum = signal.SIGINT
    return stop.signum is not None


def check_stop() -> None:
    """Raise ``KeyboardInterrupt`` if a stop signal arrived and its interrupt was dropped (or
    it arrived at all, for SIGTERM / SIGHUP): called between units of work."""
    if _current is not None and (_current.dropped or _current.signum is not None):
        raise KeyboardInterrupt


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """While inside, a Ctrl-C (or a SIGTERM / SIGHUP, which arrive as one) waits: it is raised
    as ``KeyboardInterrupt`` when the block ends. For the few steps a signal must not cut in
    half, such as creating a run directory and renaming its files into place. Only where
    Python's own SIGINT handler is in place, on the main thread; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)
        if _current is not None:
            _current.dropped = True  # if the block fails otherwise, check_stop() still stops

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if pending:
        raise KeyboardInterrupt


@contextmanager
def stop_signals() -> Iterator[Stop]:
    """While inside: SIGTERM and SIGHUP act as SIGINT; the first stop signal is recorded."""
    global _current
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be set from the main thread
        return
    previous_hook = sys.unraisablehook

    def on_unraisable(unraisable: Any) -> None:
        # Ctrl-C itself, not a subclass (the run watchdog's is its own and fires again).
        if type(unraisable.exc_value) is KeyboardInterrupt:
            stop.dropped = True  # check_stop() raises it again at the next boundary
            return
        previous_hook(unraisable)

    def forward(signum: int, frame: FrameType | None) -> None:
        if stop.signum is None:
            stop.signum = signum
        if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
            raise KeyboardInterrupt  # SIGINT is briefly ignored (a worker pool is starting)
        # Whoever handles SIGINT right now (the default handler raising KeyboardInterrupt, an
        # asyncio runner cancelling its main task, a server's signal receiver) gets a SIGINT.
        signal.raise_signal(signal.SIGINT)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, *_FORWARDED)}
    if previous[signal.SIGINT] in (signal.SIG_IGN, signal.SIG_DFL, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in _FORWARDED:
        signal.signal(sig, forward)
    sys.unraisablehook = on_unraisable
    read_end, write_end = os.pipe()
    for fd in (read_end, write_end):
        os.set_blocking(fd, False)
    previous_wakeup = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    if previous_wakeup == -1:
        stop.wakeup = read_end
    else:  # the embedding program's own: leave it
        signal.set_wakeup_fd(previous_wakeup)
    _current = stop
    try:
        yield stop
    finally:
        _current = None
        sys.unraisablehook = previous_hook
        if stop.wakeup is not None:
            current = signal.set_wakeup_fd(-1)
            if current != write_end:  # taken over meanwhile: leave it to its owner
                signal.set_wakeup_fd(current)
        os.close(read_end)
        os.close(write_end)
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
