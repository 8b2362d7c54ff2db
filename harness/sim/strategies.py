"""Scheduling strategies: which ready callback the sim loop runs next.

A strategy owns the loop's ready queue. ``fifo`` is asyncio's own queue (a deque). ``random``
and ``pct`` keep one FIFO queue per *source* and choose, at every step, which source's oldest
callback runs next.

Sources, and why reordering them is legal
-----------------------------------------
asyncio promises FIFO order for ``call_soon``; programs (and anyio, mcp, httpx2) rely on it
between callbacks that one piece of code scheduled. What differs between real runs is the
moment external events arrive (a timer, a socket becoming readable, another task reaching a
point), and so the order in which *independent* chains of work get going. The keyed queues
model exactly that:

- a callback scheduled while a task's step runs belongs to that task's source;
- a callback scheduled while a non-task callback runs belongs to that callback's source
  (it continues the same causal chain);
- a callback scheduled outside any callback (a timer coming due, an I/O event, a
  thread-safe call) starts a new source of its own.

Order inside one source is kept, so everything one piece of code scheduled runs in the order
it was scheduled, and anything that happens because of a callback runs after it (the callback
that caused it came first in its source). Only the interleaving between sources changes: two
tasks woken by two timers due at the same virtual instant, or two tasks that each yielded,
may run in either order. A known limit: a task that observes another task's write through
plain shared memory (no future, event or queue between them) is not ordered after callbacks
that the writer scheduled; asyncio would order them.

PCT, adapted
------------
PCT (Burckhardt et al., "A Randomized Scheduler with Probabilistic Guarantees of Finding
Bugs", ASPLOS 2010) gives each thread a random priority, always runs the highest-priority
enabled thread, and at ``d - 1`` random steps out of an estimated ``k`` lowers the running
thread's priority below every initial one. Here a *thread* is a source (above) and a *step*
is one executed callback. Sources appear dynamically, so a new source gets a uniformly random
rank among the live ones (a random float above ``d``); change point ``i`` (1-based) sets the
chosen source's priority to ``d - i``. asyncio code spins (``await sleep(0)`` in a loop waiting
for a flag), which would starve the flag's writer forever under strict priorities, so a source
whose oldest callback has waited more than ``starvation_limit`` steps runs next regardless of
priority (the same escape hatch PCT implementations use for yields).
"""

from __future__ import annotations

import asyncio
import heapq
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from threading import get_ident
from typing import Any, ClassVar, Final, TypeAlias

from harness.chaos_random import ChaosRandom
from harness.errors import ConfigError

__all__ = [
    "STRATEGIES",
    "FifoQueue",
    "KeyedQueue",
    "PctQueue",
    "RandomQueue",
    "ReadyQueue",
    "StrategyConfig",
]

STRATEGIES: Final = ("fifo", "random", "pct")

_PCT_DEFAULTS: Final[dict[str, int]] = {"depth": 3, "steps": 10_000, "starvation_limit": 1_000}


@dataclass(frozen=True)
class StrategyConfig:
    """A strategy, its parameters and its seed: everything needed to replay a schedule.

    ``pct`` params: ``depth`` (d: the bug depth aimed at; d - 1 priority change points),
    ``steps`` (k: the estimated number of executed callbacks in a run; a ``fifo`` run's
    ``stats.steps`` is a good estimate), ``starvation_limit`` (steps a ready callback may wait
    before it runs regardless of priority). ``fifo`` and ``random`` take no params.
    """

    name: str
    seed: int
    params: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def create(
        cls, name: str, *, seed: int, params: Mapping[str, Any] | None = None
    ) -> StrategyConfig:
        """Validate ``name`` and ``params`` and fill in defaults (raises ``ConfigError``)."""
        if name not in STRATEGIES:
            raise ConfigError(
                f"unknown scheduling strategy; expected one of {', '.join(STRATEGIES)}",
                field="strategy",
                value=name,
            )
        given = dict(params or {})
        allowed: dict[str, int] = dict(_PCT_DEFAULTS) if name == "pct" else {}
        for key, value in given.items():
            if key not in allowed:
                expected = ", ".join(sorted(allowed)) or "none"
                raise ConfigError(
                    f"unknown parameter for strategy '{name}' (accepted: {expected})",
                    field=f"strategy_params.{key}",
                    value=value,
                )
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    "must be a positive integer", field=f"strategy_params.{key}", value=value
                )
        allowed.update(given)
        return cls(name=name, seed=seed, params=allowed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (``StrategyConfig.create(**d)`` minus ``seed`` rebuilds it)."""
        return {"name": self.name, "seed": self.seed, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StrategyConfig:
        return cls.create(str(data["name"]), seed=int(data["seed"]), params=data.get("params"))

    def make_queue(self, record: Recorder) -> ReadyQueue:
        """A fresh ready queue implementing this strategy; ``record`` sees each popped handle."""
        if self.name == "fifo":
            return FifoQueue(record)
        rng = ChaosRandom(self.seed).fork(f"sim-schedule/{self.name}")
        if self.name == "random":
            return RandomQueue(record, rng)
        return PctQueue(record, rng, **self.params)


Recorder: TypeAlias = Callable[[asyncio.Handle], None]

_deque_popleft = deque.popleft


class FifoQueue(deque[asyncio.Handle]):
    """asyncio's own ready queue: callbacks run in the order they were scheduled.

    A thread-safe call appends from another thread straight into the deque (atomic), as it
    does on asyncio's own loop.
    """

    def __init__(self, record: Recorder) -> None:
        super().__init__()
        self._record = record

    def popleft(self) -> asyncio.Handle:
        handle = _deque_popleft(self)
        self._record(handle)
        return handle

    def enter(self) -> None:
        """Called by the loop when it starts running (nothing to track here)."""

    def leave(self) -> None:
        """Called by the loop when no callback is running (nothing to track here)."""

    def take_foreign(self) -> None:
        """Called by the loop each round (thread-safe calls are already in the deque)."""


class _Source:
    """A source of callbacks that is not a task (a timer, an I/O event, a thread-safe call)."""

    __slots__ = ("__weakref__",)


class KeyedQueue:
    """One FIFO per source; subclasses choose which source runs next.

    Implements the part of the ``deque`` interface asyncio uses on ``loop._ready``:
    ``append``, ``popleft``, ``len``, truth and ``clear``. A handle appended from a thread other
    than the loop's (``call_soon_threadsafe``) waits aside until the loop takes it at its next
    round (``take_foreign``), as a new source: the per-source state is the loop thread's alone.
    """

    name: ClassVar[str]

    def __init__(self, record: Recorder) -> None:
        self._record = record
        self._owner = get_ident()
        self._foreign: deque[asyncio.Handle] = deque()
        self._queues: dict[object, deque[tuple[int, asyncio.Handle]]] = {}
        self._size = 0
        self._context: object | None = None
        # Count of callbacks handed out; PCT change points and starvation are measured in it.
        self._step = 0

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def append(self, handle: asyncio.Handle) -> None:
        if get_ident() != self._owner:
            self._foreign.append(handle)  # deque.append is atomic
            return
        key = self._context if self._context is not None else _Source()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            self._on_new_source(key)
        queue.append((self._step, handle))
        self._size += 1

    def popleft(self) -> asyncio.Handle:
        if not self._size:
            raise IndexError("pop from an empty ready queue")
        key = self._choose()
        queue = self._queues[key]
        _, handle = queue.popleft()
        if queue:
            self._on_new_head(key, queue[0][0])
        else:
            del self._queues[key]
            self._on_source_gone(key)
        self._size -= 1
        self._step += 1
        owner = getattr(getattr(handle, "_callback", None), "__self__", None)
        self._context = owner if isinstance(owner, asyncio.Task) else key
        self._record(handle)
        return handle

    def enter(self) -> None:
        """Called by the loop when it starts running: its thread owns the queue."""
        self._owner = get_ident()

    def leave(self) -> None:
        """Called by the loop when no callback is running: new callbacks start new sources."""
        self._context = None

    def take_foreign(self) -> None:
        """Called by the loop between rounds: thread-safe calls join, each a new source."""
        while self._foreign:
            self.append(self._foreign.popleft())

    def clear(self) -> None:
        for key in list(self._queues):
            self._on_source_gone(key)
        self._queues.clear()
        self._foreign.clear()
        self._size = 0
        self._context = None

    def _choose(self) -> object:
        raise NotImplementedError

    def _on_new_source(self, key: object) -> None:
        """Hook: a source got its first pending callback."""

    def _on_source_gone(self, key: object) -> None:
        """Hook: a source has no pending callback any more."""

    def _on_new_head(self, key: object, enqueued: int) -> None:
        """Hook: a source's oldest callback is now the one enqueued at step ``enqueued``."""


class RandomQueue(KeyedQueue):
    """At every step, a seeded uniform choice among the sources that have a ready callback."""

    name = "random"

    def __init__(self, record: Recorder, rng: ChaosRandom) -> None:
        super().__init__(record)
        self._rng = rng
        self._keys: list[object] = []
        self._index: dict[object, int] = {}

    def _on_new_source(self, key: object) -> None:
        self._index[key] = len(self._keys)
        self._keys.append(key)

    def _on_source_gone(self, key: object) -> None:
        # Swap-remove keeps removal O(1); the resulting order is still a pure function of the run.
        position = self._index.pop(key)
        last = self._keys.pop()
        if last is not key:
            self._keys[position] = last
            self._index[last] = position

    def _choose(self) -> object:
        keys = self._keys
        if len(keys) == 1:
            return keys[0]
        return keys[self._rng.randint(0, len(keys) - 1)]


class PctQueue(KeyedQueue):
    """PCT priorities over sources (see the module docstring for the adaptation).

    Choosing is O(log n): a max-heap of live sources by priority and a min-heap by the age of
    their oldest callback (for the starvation limit), both with lazy deletion.
    """

    name = "pct"

    def __init__(
        self, record: Recorder, rng: ChaosRandom, *, depth: int, steps: int, starvation_limit: int
    ) -> None:
        super().__init__(record)
        self._rng = rng
        self._depth = depth
        self._starvation_limit = starvation_limit
        # Kept while the source lives (not only while it has callbacks): a task that yields
        # and comes back keeps its priority, as a PCT thread does.
        self._priority: weakref.WeakKeyDictionary[object, float] = weakref.WeakKeyDictionary()
        self._live: dict[object, float] = {}
        self._by_priority: list[tuple[float, int, object]] = []
        self._by_age: list[tuple[int, int, object]] = []
        self._pushes = 0
        points = min(depth - 1, steps)
        chosen = sorted(set(_sample_distinct(rng, 1, steps, points)))
        # Change point i (1-based, in step order) lowers the chosen source to priority d - i.
        self._change_points = {step: depth - i for i, step in enumerate(chosen, start=1)}

    def _on_new_source(self, key: object) -> None:
        priority = self._priority.get(key)
        if priority is None:
            priority = self._priority[key] = self._depth + self._rng.random()
        self._live[key] = priority
        self._push_priority(key, priority)
        self._push_age(key, self._step)

    def _on_source_gone(self, key: object) -> None:
        del self._live[key]
        if len(self._by_priority) > 4 * len(self._live) + 64:
            self._rebuild()

    def _on_new_head(self, key: object, enqueued: int) -> None:
        self._push_age(key, enqueued)

    def _choose(self) -> object:
        step = self._step + 1
        ages = self._by_age
        queues = self._queues
        while ages:
            enqueued, _, key = ages[0]
            queue = queues.get(key)
            if queue is not None and queue[0][0] == enqueued:
                if enqueued < step - self._starvation_limit:
                    return key
                break
            heapq.heappop(ages)
        best = self._highest()
        lowered = self._change_points.get(step)
        if lowered is not None:
            self._priority[best] = self._live[best] = float(lowered)
            self._push_priority(best, float(lowered))
            best = self._highest()
        return best

    def _highest(self) -> object:
        heap = self._by_priority
        while True:
            negated, _, key = heap[0]
            if self._live.get(key) == -negated:
                return key
            heapq.heappop(heap)

    def _push_priority(self, key: object, priority: float) -> None:
        self._pushes += 1
        heapq.heappush(self._by_priority, (-priority, self._pushes, key))

    def _push_age(self, key: object, enqueued: int) -> None:
        self._pushes += 1
        heapq.heappush(self._by_age, (enqueued, self._pushes, key))

    def _rebuild(self) -> None:
        self._by_priority = [
            (-priority, order, key) for order, (key, priority) in enumerate(self._live.items())
        ]
        heapq.heapify(self._by_priority)
        self._by_age = [
            (self._queues[key][0][0], order, key) for order, key in enumerate(self._live)
        ]
        heapq.heapify(self._by_age)


ReadyQueue: TypeAlias = FifoQueue | KeyedQueue


def _sample_distinct(rng: ChaosRandom, low: int, high: int, count: int) -> list[int]:
    """``count`` distinct ints in [low, high] (Floyd's algorithm: ``count`` draws, no big list)."""
    chosen: set[int] = set()
    picked: list[int] = []
    for top in range(high - count + 1, high + 1):
        value = rng.randint(low, top)
        if value in chosen:
            value = top
        chosen.add(value)
        picked.append(value)
    return picked
