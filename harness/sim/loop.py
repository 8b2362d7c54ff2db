"""``VirtualTimeLoop``: asyncio with a virtual clock, a seeded scheduler and deadlock detection.

asyncio runs its own rounds (``run_forever`` / ``_run_once``); this loop only changes what those
rounds see, through four seams, in the way looptime and trio's ``MockClock`` keep fake time
portable (the clock and the "how long may I sleep" question, never the round itself):

- ``time()`` (a public method) returns the virtual clock, which starts at 0.0.
- ``call_at()`` (public; ``call_later`` and every timeout go through it) keeps timers in the
  loop's own heap, ordered by (deadline, scheduling order): in virtual time many timers share one
  instant, and they fire as they would in real time, where the later-scheduled one has the later
  deadline. asyncio's own timer heap stays empty.
- The selector, handed to asyncio's public ``SelectorEventLoop(selector=...)`` argument, is where
  a round asks to wait. Each round it polls real I/O with timeout 0 and moves due timers (deadline
  ``<= time()``, no clock-resolution slack) into the ready queue. When asyncio would block (nothing
  ready, not stopping) and no I/O arrived, the clock jumps to the earliest timer, so a 150 s
  timeout costs one round. Nothing ready, no timer and no I/O that could arrive:
  ``SimDeadlock`` listing the pending tasks. If a real file descriptor other than the loop's own
  wake-up pipe is registered, or threads started since the loop was built are alive (they may
  call ``call_soon_threadsafe``), the loop first waits for real I/O for at most ``io_wait`` real
  seconds. Sim mode uses none of these; while timers are pending the clock jumps without waiting
  for real I/O or threads, which is why virtual time is only for in-process, async-only runs.
- The ready queue: asyncio's ``loop._ready`` deque is replaced by the scheduling strategy's queue
  (``harness.sim.strategies``), which implements the five deque operations asyncio uses on it.
  ``fifo`` is asyncio's order; ``random`` / ``pct`` choose among sources at each step. This and
  reading a handle's ``_callback`` (to label a step and to tell a task's step from other
  callbacks) are the only private asyncio details the loop relies on.

``check_internals()`` runs when the first loop is built. It refuses an interpreter whose version
is not in ``TESTED_PYTHON`` and checks, on a probe run, that asyncio still drives the seams as
described, so an upgrade fails loudly instead of running a silently wrong schedule. The tested
versions (CPython 3.11, 3.12, 3.13) need no per-version code: their rounds are the same.

Budgets: a jump past ``virtual_deadline`` or a round started after ``wall_deadline``
(``time.perf_counter()``) raises ``SimBudgetExceeded``.

Every executed callback is counted and its deterministic label (task name and coroutine qualname,
or callback qualname; never an address) is fed to a running BLAKE2b hash (``step_hash``): the same
seed and strategy give the same hash on the same interpreter and libraries.

Deterministic ids: tasks created without a name are named ``sim-task-N`` from a per-loop counter
(asyncio's default ``Task-N`` comes from a process-wide counter). Things this loop cannot make
deterministic: code that reads ``time.time()``/``time.monotonic()`` directly, uses threads or
real I/O, or iterates sets of objects hashed by memory address. anyio does the last when it
delivers a cancellation to the tasks and nested cancel scopes of a scope, so where that order
matters (a cancelled task group whose tasks wake each other) a seed's schedule can differ between
two runs in one process; a fresh process repeats the same run.

A ``call_soon_threadsafe`` from another thread is queued by the strategy and enters the schedule
at the next round as a new source. Not supported: debug-mode checks and slow-callback warnings,
and signal handlers (they enqueue from a signal context, bypassing that queue).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import inspect
import selectors
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Generator
from contextvars import Context
from typing import Any, Final, TypeVar

from harness.errors import HarnessDefect
from harness.sim.errors import SimBudgetExceeded, SimDeadlock, pending_tasks
from harness.sim.strategies import ReadyQueue, StrategyConfig

__all__ = ["TESTED_PYTHON", "VirtualTimeLoop", "check_internals"]

T = TypeVar("T")

# CPython versions whose asyncio drives the seams above as described (checked by CI on each).
TESTED_PYTHON: Final = ((3, 11), (3, 12), (3, 13))

# A compaction drops cancelled timers once the heap is this big and twice its live size.
_MIN_COMPACT: Final = 100

_Event = tuple[selectors.SelectorKey, int]

_state = "unchecked"  # -> "checking" (the probe run) -> "checked"


def check_internals() -> None:
    """Raise ``HarnessDefect`` unless this interpreter's asyncio drives the loop as it must."""
    global _state
    if _state != "unchecked":
        return
    problems = _version_problems()
    if not problems:
        problems = _shape_problems()
    if not problems:
        _state = "checking"
        try:
            problems = _probe_problems()
        finally:
            _state = "unchecked"
    if problems:
        raise HarnessDefect(
            "the virtual-time sim loop cannot run on this interpreter: " + "; ".join(problems)
        )
    _state = "checked"


def _version_problems() -> list[str]:
    version = sys.version_info[:2]
    tested = ", ".join(f"{major}.{minor}" for major, minor in TESTED_PYTHON)
    implementation = sys.implementation.name
    if implementation != "cpython" or version not in TESTED_PYTHON:
        name = "Python" if implementation == "cpython" else implementation
        return [
            f"{name} {version[0]}.{version[1]} is not a version the sim loop is tested on "
            f"(tested: CPython {tested}); sim mode depends on how asyncio runs its rounds, so "
            "use a tested interpreter, or --mode live which needs no sim loop"
        ]
    return []


def _shape_problems() -> list[str]:
    problems = []
    base = asyncio.SelectorEventLoop
    if "selector" not in inspect.signature(base.__init__).parameters:
        problems.append("asyncio.SelectorEventLoop no longer takes a selector")
    run_once = getattr(asyncio.BaseEventLoop, "_run_once", None)
    names = set(getattr(getattr(run_once, "__code__", None), "co_names", ()))
    for name in ("_ready", "popleft", "_selector", "select"):
        if name not in names:
            problems.append(f"asyncio's round (_run_once) no longer uses {name}")
    if "_callback" not in getattr(asyncio.Handle, "__slots__", ()):
        problems.append("asyncio.Handle has no slot _callback")
    return problems


def _probe_problems() -> list[str]:
    """Run a task that sleeps 5 s and expect one clock jump and its steps in the ready queue."""

    async def sleeper() -> float:
        await asyncio.sleep(5)
        return asyncio.get_running_loop().time()

    probe: VirtualTimeLoop | None = None
    try:
        probe = VirtualTimeLoop(record_trace=True)
        woke_at = probe.run_until_complete(probe.create_task(sleeper(), name="probe"))
    except Exception as error:
        return [f"a probe run failed: {type(error).__name__}: {error}"]
    finally:
        if probe is not None:
            probe.close()
    problems = []
    if woke_at != 5.0 or probe.timer_jumps != 1:
        problems.append(
            f"a 5 s sleep woke at virtual {woke_at!r} s after {probe.timer_jumps} clock jumps "
            "(expected 5.0 s after 1)"
        )
    if "probe:_probe_problems.<locals>.sleeper" not in (probe.trace or []):
        problems.append("a task's steps no longer pass through the ready queue bound to the task")
    return problems


class _Selector(selectors.DefaultSelector):
    """The platform's selector, with ``select`` handed to the loop's round hook."""

    def __init__(self) -> None:
        super().__init__()
        self.hook: Callable[[float | None], list[_Event]] | None = None

    def select(self, timeout: float | None = None) -> list[_Event]:
        if self.hook is None:
            return self.poll(timeout)
        return self.hook(timeout)

    def poll(self, timeout: float | None) -> list[_Event]:
        """The real select: wait at most ``timeout`` real seconds (``None``: forever)."""
        events: list[_Event] = super().select(timeout)
        return events


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
        self._vselector = _Selector()
        super().__init__(selector=self._vselector)
        # The loop's wake-up pipe is all that is registered yet: it is not a source of work.
        self._own_fds = frozenset(key.fd for key in self._vselector.get_map().values())
        self.strategy = strategy if strategy is not None else StrategyConfig.create("fifo", seed=0)
        self._queue: ReadyQueue = self.strategy.make_queue(self._record)
        self._ready = self._queue
        self._vselector.hook = self._round
        self._vnow = 0.0
        self._io_wait = io_wait
        self._timers: list[tuple[float, int, asyncio.TimerHandle]] = []
        self._compact_at = _MIN_COMPACT
        self._timer_counter = 0
        self._task_counter = 0
        self._threads_before = frozenset(threading.enumerate())
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
        if when is None:
            raise TypeError("when cannot be None")
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        timer = asyncio.TimerHandle(when, callback, args, self, context)
        self._timer_counter += 1
        heapq.heappush(self._timers, (when, self._timer_counter, timer))
        if len(self._timers) > self._compact_at:
            self._compact_timers()
        return timer

    def run_forever(self) -> None:
        self._queue.enter()
        try:
            super().run_forever()
        finally:
            # Whatever is scheduled from outside the loop (a cancel at shutdown) starts a source.
            self._queue.leave()

    def close(self) -> None:
        self._timers.clear()
        super().close()
        self._vselector.hook = None

    # -- the round -----------------------------------------------------------------------

    def _round(self, timeout: float | None) -> list[_Event]:
        """asyncio's round asks to wait ``timeout`` s: 0 when work is ready, ``None`` when not."""
        self.rounds += 1
        if self.wall_deadline is not None and time.perf_counter() > self.wall_deadline:
            raise SimBudgetExceeded(
                "the run exceeded its wall-time budget",
                budget="wall",
                virtual_time=self._vnow,
                pending=pending_tasks(self),
            )
        if timeout:
            raise HarnessDefect(
                "asyncio scheduled a timer without call_at, which the virtual clock cannot see"
            )
        queue = self._queue
        # Timers, I/O events and thread-safe calls enqueued from here start new sources.
        queue.leave()
        timers = self._timers
        while timers and timers[0][2].cancelled():
            heapq.heappop(timers)
        events = self._vselector.poll(0)
        queue.take_foreign()
        if timeout is None and not events and not queue:
            if timers:
                self._jump_to(timers[0][0])
            else:
                events = self._wait_for_real_io()
        now = self._vnow
        while timers and timers[0][0] <= now:
            # A cancelled timer behind a live one is queued and skipped, as asyncio does.
            queue.append(heapq.heappop(timers)[2])
        return events

    def _record(self, handle: asyncio.Handle) -> None:
        """Count and label a callback the round is about to run."""
        if handle.cancelled():
            return
        self.steps += 1
        label = _label(handle)
        self._hash.update(f"{label}\n".encode())
        if self.trace is not None:
            self.trace.append(label)

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

    def _compact_timers(self) -> None:
        live = [entry for entry in self._timers if not entry[2].cancelled()]
        heapq.heapify(live)
        self._timers[:] = live
        self._compact_at = max(_MIN_COMPACT, 2 * len(live))

    def _wait_for_real_io(self) -> list[_Event]:
        sources = []
        foreign = sorted(
            key.fd for key in self._vselector.get_map().values() if key.fd not in self._own_fds
        )
        if foreign:
            sources.append(f"file descriptors {foreign}")
        # A thread started during the run may call call_soon_threadsafe (anyio.to_thread and
        # run_in_executor do): give it a chance. Threads that existed before the loop
        # (exporters, the test runner) cannot know this loop and are ignored.
        threads = sorted(
            thread.name
            for thread in threading.enumerate()
            if thread.is_alive() and thread not in self._threads_before
        )
        if threads:
            sources.append(f"threads {threads}")
        if sources:
            events = self._vselector.poll(self._io_wait)
            self._queue.take_foreign()
            if events or self._queue:
                return events
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


def _label(handle: asyncio.Handle) -> str:
    callback = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return f"{owner.get_name()}:{getattr(coro, '__qualname__', type(coro).__qualname__)}"
    func = getattr(callback, "func", callback)  # functools.partial
    return str(getattr(func, "__qualname__", type(func).__qualname__))
