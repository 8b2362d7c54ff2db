"""``VirtualTimeLoop``: asyncio with a virtual clock, a seeded scheduler and deadlock detection.

This is the one module of the harness that relies on asyncio internals (``_run_once``,
``_ready``, ``_scheduled``, ``_selector``, ``_process_events``, ``_stopping``, timer and handle
slots). It is checked against CPython 3.11; ``check_internals()`` runs when the first loop is
built and raises ``HarnessDefect`` if the interpreter or the internals differ, so an upgrade
fails loudly instead of running a silently wrong schedule.

How a round (``_run_once``) differs from asyncio's:

- ``time()`` returns the virtual clock (starts at 0.0). It only moves when nothing is ready:
  the selector is polled with timeout 0 and, if no I/O arrived, the clock jumps to the earliest
  timer. A 150 s timeout therefore costs one round.
- A timer is due when ``when <= time()`` (no clock-resolution slack: virtual time is exact).
- The ready queue belongs to the scheduling strategy (``harness.sim.strategies``): ``fifo`` is
  asyncio's deque, ``random`` / ``pct`` choose among sources at each step.
- Nothing ready, no timer, no I/O that could arrive: ``SimDeadlock`` listing the pending tasks.
  If a real file descriptor (other than the loop's own wake-up pipe) is registered, the loop
  has an executor, or threads started since the loop was built are alive (they may call
  ``call_soon_threadsafe``), the loop first waits for real I/O for at most ``io_wait`` real
  seconds. Sim mode uses none of these; while timers are pending the clock jumps without
  waiting for real I/O or threads, which is why virtual time is only for in-process,
  async-only runs.
- Budgets: a jump past ``virtual_deadline`` or a round started after ``wall_deadline``
  (``time.perf_counter()``) raises ``SimBudgetExceeded``.
- Every executed callback is counted and its deterministic label (task name and coroutine
  qualname, or callback qualname; never an address) is fed to a running BLAKE2b hash
  (``step_hash``): the same seed and strategy give the same hash.

Deterministic ids: tasks created without a name are named ``sim-task-N`` from a per-loop
counter (asyncio's default ``Task-N`` comes from a process-wide counter). Things this loop
cannot make deterministic: code that reads ``time.time()``/``time.monotonic()`` directly,
iterates sets of objects hashed by address, uses threads, or real I/O.

``call_soon_threadsafe`` calls are queued and moved into the ready queue by the loop thread at
the next round, each as a new source. Not supported: debug-mode slow-callback warnings, and
signal handlers (they enqueue from a signal context, bypassing that queue).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import heapq
import selectors
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Generator
from contextvars import Context
from typing import Any, Final, TypeVar

from harness.errors import HarnessDefect
from harness.sim.errors import SimBudgetExceeded, SimDeadlock, pending_tasks
from harness.sim.strategies import FifoQueue, KeyedQueue, StrategyConfig

__all__ = ["SUPPORTED_PYTHON", "VirtualTimeLoop", "check_internals"]

T = TypeVar("T")

SUPPORTED_PYTHON: Final = ((3, 11),)

# asyncio's thresholds for compacting the timer heap (base_events.py in 3.11).
_MIN_SCHEDULED_TIMER_HANDLES: Final = 100
_MIN_CANCELLED_TIMER_HANDLES_FRACTION: Final = 0.5

_checked = False


def check_internals() -> None:
    """Raise ``HarnessDefect`` unless this interpreter's asyncio has the shape this loop needs."""
    global _checked
    if _checked:
        return
    problems: list[str] = []
    if sys.version_info[:2] not in SUPPORTED_PYTHON:
        supported = ", ".join(f"{major}.{minor}" for major, minor in SUPPORTED_PYTHON)
        problems.append(
            f"Python {sys.version_info.major}.{sys.version_info.minor} is not a supported "
            f"version for the sim loop (supported: {supported})"
        )
    base = asyncio.SelectorEventLoop
    for method in (
        "_run_once",
        "_check_callback",
        "_check_thread",
        "_process_events",
        "_add_callback",
        "_call_soon",
        "_check_closed",
        "_write_to_self",
    ):
        if not callable(getattr(base, method, None)):
            problems.append(f"asyncio.SelectorEventLoop.{method} is missing")
    run_forever = getattr(base, "run_forever", None)
    if run_forever is None or "_run_once" not in run_forever.__code__.co_names:
        problems.append("asyncio's run_forever no longer drives the loop through _run_once")
    handle_slots = set(getattr(asyncio.Handle, "__slots__", ()))
    for slot in ("_callback", "_args", "_cancelled"):
        if slot not in handle_slots:
            problems.append(f"asyncio.Handle has no slot {slot}")
    if not callable(getattr(asyncio.Handle, "_run", None)):
        problems.append("asyncio.Handle._run is missing")
    timer_slots = set(getattr(asyncio.TimerHandle, "__slots__", ()))
    for slot in ("_when", "_scheduled"):
        if slot not in timer_slots:
            problems.append(f"asyncio.TimerHandle has no slot {slot}")
    if not problems:
        probe = asyncio.SelectorEventLoop()
        try:
            expected: dict[str, type | tuple[type, ...]] = {
                "_ready": collections.deque,
                "_scheduled": list,
                "_stopping": bool,
                "_debug": bool,
                "_timer_cancelled_count": int,
                "_clock_resolution": float,
                "_selector": selectors.BaseSelector,
                "_ssock": object,
                "_default_executor": type(None),
            }
            for name, kind in expected.items():
                if not hasattr(probe, name):
                    problems.append(f"asyncio event loops have no attribute {name}")
                elif not isinstance(getattr(probe, name), kind):
                    problems.append(
                        f"asyncio's loop.{name} is a {type(getattr(probe, name)).__name__}, "
                        f"expected {kind}"
                    )
            if not problems:
                _check_task_steps(probe, problems)
        finally:
            probe.close()
    if problems:
        raise HarnessDefect(
            "the virtual-time sim loop cannot run on this interpreter, because it relies on "
            "asyncio internals that changed: " + "; ".join(problems)
        )
    _checked = True


def _check_task_steps(probe: asyncio.AbstractEventLoop, problems: list[str]) -> None:
    """The strategies recognise a task's step as a ready Handle whose callback is bound to it."""

    async def nothing() -> None:
        return None

    task = probe.create_task(nothing())
    ready: collections.deque[asyncio.Handle] = probe._ready  # type: ignore[attr-defined]
    callback = getattr(ready[-1], "_callback", None) if ready else None
    if getattr(callback, "__self__", None) is not task:
        problems.append("a task's step is no longer a ready Handle bound to the task")
    probe.run_until_complete(task)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock is virtual and whose ready queue is a strategy."""

    def __new__(cls, *args: Any, **kwargs: Any) -> VirtualTimeLoop:
        # Checked before an instance exists: a half-built loop would fail again in __del__.
        check_internals()
        return super().__new__(cls)

    def __init__(
        self,
        *,
        strategy: StrategyConfig | None = None,
        record_trace: bool = False,
        io_wait: float = 1.0,
    ) -> None:
        super().__init__()
        self.strategy = strategy if strategy is not None else StrategyConfig.create("fifo", seed=0)
        self._ready: FifoQueue | KeyedQueue = self.strategy.make_queue()
        self._vnow = 0.0
        self._io_wait = io_wait
        self._inbox: collections.deque[asyncio.Handle] = collections.deque()
        self._task_counter = 0
        self._threads_before = frozenset(threading.enumerate())
        self._timer_counter = 0
        self._hash = hashlib.blake2b(digest_size=16)
        self.trace: list[str] | None = [] if record_trace else None
        self.steps = 0
        self.timer_jumps = 0
        self.rounds = 0
        self.virtual_deadline: float | None = None
        self.wall_deadline: float | None = None

    # -- public --------------------------------------------------------------------------

    def time(self) -> float:
        """Virtual seconds since the loop was created."""
        return self._vnow

    @property
    def step_hash(self) -> str:
        """Hex digest of the labels of every callback executed so far, in order."""
        return self._hash.hexdigest()

    def create_task(  # type: ignore[override]
        self,
        coro: Coroutine[Any, Any, T] | Generator[Any, None, T],
        *,
        name: str | None = None,
        context: Context | None = None,
    ) -> asyncio.Task[T]:
        self._task_counter += 1
        if name is None:
            name = f"sim-task-{self._task_counter}"
        return super().create_task(coro, name=name, context=context)

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        # asyncio's call_at with a timer that breaks ties by scheduling order: in virtual time
        # many timers share one instant, and they must fire as they would in real time (where
        # the later-scheduled one has the later deadline), not in heap order.
        if when is None:
            raise TypeError("when cannot be None")
        raw: Any = self
        raw._check_closed()
        if raw._debug:
            raw._check_thread()
            raw._check_callback(callback, "call_at")
        self._timer_counter += 1
        timer = _SimTimer(when, callback, args, self, context)
        timer._seq = self._timer_counter
        if raw._debug and timer._source_traceback:  # type: ignore[attr-defined]
            del timer._source_traceback[-1]  # type: ignore[attr-defined]
        heapq.heappush(raw._scheduled, timer)
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def call_soon_threadsafe(  # type: ignore[override]
        self, callback: Callable[..., object], *args: Any, context: Context | None = None
    ) -> asyncio.Handle:
        self._check_closed()  # type: ignore[attr-defined]
        handle = asyncio.Handle(callback, args, self, context)
        # deque.append is atomic; the loop thread moves it into the ready queue next round.
        self._inbox.append(handle)
        self._write_to_self()  # type: ignore[attr-defined]
        return handle

    # -- the round -----------------------------------------------------------------------

    def _run_once(self) -> None:
        self.rounds += 1
        if self.wall_deadline is not None and time.perf_counter() > self.wall_deadline:
            raise SimBudgetExceeded(
                "the run exceeded its wall-time budget",
                budget="wall",
                virtual_time=self._vnow,
                pending=pending_tasks(self),
            )
        raw: Any = self  # asyncio internals, checked by check_internals()
        ready = self._ready
        # Timers and I/O events enqueued below start new sources, even if the previous round
        # was left by an exception escaping a callback.
        ready.leave()
        while self._inbox:
            ready.append(self._inbox.popleft())
        self._drop_cancelled_timers()
        scheduled: list[asyncio.TimerHandle] = raw._scheduled
        selector: selectors.BaseSelector = raw._selector
        if ready or raw._stopping:
            event_list = selector.select(0)
        elif scheduled:
            event_list = selector.select(0)
            if not event_list:
                self._jump_to(scheduled[0].when())
        else:
            event_list = self._wait_for_real_io(selector)
        raw._process_events(event_list)
        del event_list
        while self._inbox:
            ready.append(self._inbox.popleft())

        now = self._vnow
        while scheduled and scheduled[0].when() <= now:
            timer = heapq.heappop(scheduled)
            timer._scheduled = False  # type: ignore[attr-defined]
            ready.append(timer)

        trace = self.trace
        update = self._hash.update
        for _ in range(len(ready)):
            handle = ready.popleft()
            if handle._cancelled:
                continue
            self.steps += 1
            label = _label(handle)
            update(label.encode())
            update(b"\n")
            if trace is not None:
                trace.append(label)
            handle._run()
        ready.leave()

    def _jump_to(self, when: float) -> None:
        if when <= self._vnow:
            return
        if self.virtual_deadline is not None and when > self.virtual_deadline:
            raise SimBudgetExceeded(
                f"the run exceeded its virtual-time budget (next timer at {when:.6f} s, "
                f"budget ends at {self.virtual_deadline:.6f} s)",
                budget="virtual",
                virtual_time=self._vnow,
                pending=pending_tasks(self),
            )
        self._vnow = when
        self.timer_jumps += 1

    def _drop_cancelled_timers(self) -> None:
        # Same policy as asyncio's _run_once: compact the heap when most timers are cancelled.
        raw: Any = self
        scheduled: list[asyncio.TimerHandle] = raw._scheduled
        count = len(scheduled)
        cancelled = raw._timer_cancelled_count
        if (
            count > _MIN_SCHEDULED_TIMER_HANDLES
            and cancelled / count > _MIN_CANCELLED_TIMER_HANDLES_FRACTION
        ):
            kept = []
            for timer in scheduled:
                if timer.cancelled():
                    timer._scheduled = False  # type: ignore[attr-defined]
                else:
                    kept.append(timer)
            heapq.heapify(kept)
            raw._scheduled = kept
            raw._timer_cancelled_count = 0
        else:
            while scheduled and scheduled[0].cancelled():
                raw._timer_cancelled_count -= 1
                timer = heapq.heappop(scheduled)
                timer._scheduled = False  # type: ignore[attr-defined]

    def _wait_for_real_io(
        self, selector: selectors.BaseSelector
    ) -> list[tuple[selectors.SelectorKey, int]]:
        raw: Any = self
        own = raw._ssock.fileno()
        sources = []
        foreign = sorted(key.fd for key in selector.get_map().values() if key.fd != own)
        if foreign:
            sources.append(f"file descriptors {foreign}")
        if raw._default_executor is not None:
            sources.append("the loop's executor")
        # A thread started during the run may call call_soon_threadsafe (anyio.to_thread does):
        # give it a chance. Threads that existed before the loop (exporters, the test runner)
        # cannot know this loop and are ignored.
        threads = sorted(
            thread.name
            for thread in threading.enumerate()
            if thread.is_alive() and thread not in self._threads_before
        )
        if threads:
            sources.append(f"threads {threads}")
        if sources:
            event_list = selector.select(self._io_wait)
            if event_list or self._inbox:
                return event_list
            raise SimDeadlock(
                "sim deadlock: nothing is ready and no timer is scheduled; waited "
                f"{self._io_wait} s of real time for {' and '.join(sources)} and nothing "
                "arrived (sim mode must not use real I/O or threads)",
                virtual_time=self._vnow,
                pending=pending_tasks(self),
            )
        raise SimDeadlock(
            "sim deadlock: nothing is ready, no timer is scheduled and no I/O can arrive, "
            "so the run can never progress",
            virtual_time=self._vnow,
            pending=pending_tasks(self),
        )


class _SimTimer(asyncio.TimerHandle):
    """A timer ordered by (deadline, scheduling order)."""

    __slots__ = ("_seq",)

    _seq: int

    def __lt__(self, other: object) -> bool:
        if isinstance(other, _SimTimer):
            return (self.when(), self._seq) < (other.when(), other._seq)
        return super().__lt__(other)  # type: ignore[operator]


def _label(handle: asyncio.Handle) -> str:
    callback = handle._callback  # type: ignore[attr-defined]
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return f"{owner.get_name()}:{getattr(coro, '__qualname__', type(coro).__qualname__)}"
    func = getattr(callback, "func", callback)  # functools.partial
    return str(getattr(func, "__qualname__", type(func).__qualname__))
