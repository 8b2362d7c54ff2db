"""``run_sim``: run one coroutine to completion on a fresh ``VirtualTimeLoop``.

From a (sync) pytest test or any sync code::

    from harness.sim import run_sim

    def test_timeout_fires_in_virtual_time() -> None:
        async def main() -> float:
            with anyio.move_on_after(150):
                await anyio.sleep(1_000)
            return anyio.current_time()

        result = run_sim(main, seed=7)
        assert result.value == 150.0

The test must be a plain ``def``: ``run_sim`` drives its own loop and refuses to run inside an
already running one (an ``async def`` test under pytest-asyncio is one).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from harness.errors import ConfigError, HarnessDefect
from harness.sim.errors import SimDeadlock, SimStalled, pending_tasks
from harness.sim.loop import VirtualTimeLoop
from harness.sim.strategies import StrategyConfig

__all__ = ["SimResult", "SimStats", "run_sim"]

T = TypeVar("T")

_DRAIN_WALL_LIMIT = 5.0
_INTERRUPTED_DRAIN_WALL_LIMIT = 1.0


@dataclass(frozen=True)
class SimStats:
    """What a sim run cost and the fingerprint of its schedule."""

    strategy: StrategyConfig
    virtual_elapsed: float
    wall_elapsed: float
    steps: int
    rounds: int
    timer_jumps: int
    step_hash: str
    trace: tuple[str, ...] | None = None

    @property
    def virtual_wall_ratio(self) -> float:
        return self.virtual_elapsed / self.wall_elapsed if self.wall_elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (wall time is the only field that differs between replays)."""
        return {
            "strategy": self.strategy.to_dict(),
            "virtual_elapsed": self.virtual_elapsed,
            "wall_elapsed": self.wall_elapsed,
            "steps": self.steps,
            "rounds": self.rounds,
            "timer_jumps": self.timer_jumps,
            "step_hash": self.step_hash,
        }


@dataclass(frozen=True)
class SimResult(Generic[T]):
    """The value ``main`` returned and the run's stats."""

    value: T
    stats: SimStats


def run_sim(
    main: Callable[[], Awaitable[T]],
    *,
    seed: int,
    strategy: str = "fifo",
    strategy_params: Mapping[str, Any] | None = None,
    virtual_time_limit: float | None = None,
    wall_time_limit: float | None = None,
    record_trace: bool = False,
    io_wait: float = 1.0,
) -> SimResult[T]:
    """Run ``main()`` on a new virtual-time loop and close the loop.

    ``strategy`` is ``fifo`` (asyncio's order), ``random`` or ``pct`` (params ``depth``,
    ``steps``, ``starvation_limit``); the schedule is a pure function of ``seed``, ``strategy``
    and its params. ``virtual_time_limit`` / ``wall_time_limit`` bound the run (seconds):
    overrunning raises ``SimBudgetExceeded``; a run that can never progress raises
    ``SimDeadlock``. Both are ``SimStalled`` (a ``RuntimeFailure``) listing the pending tasks,
    with ``.stats`` set. An exception raised by ``main`` propagates with a note naming the
    strategy, seed, virtual time and step hash (to replay it). In every case
    the tasks left over are cancelled and awaited, async generators are shut down and the loop
    is closed. ``record_trace`` keeps the label of every executed callback in ``stats.trace``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise HarnessDefect(
            "run_sim() drives its own event loop and cannot be called from inside a running "
            "one; call it from a plain (sync) function or test"
        )
    config = StrategyConfig.create(strategy, seed=seed, params=strategy_params)
    for field, limit in (
        ("virtual_time_limit", virtual_time_limit),
        ("wall_time_limit", wall_time_limit),
        ("io_wait", io_wait),
    ):
        if limit is not None and not limit > 0:
            raise ConfigError("must be a positive number of seconds", field=field, value=limit)

    loop = VirtualTimeLoop(strategy=config, record_trace=record_trace, io_wait=io_wait)
    started = time.perf_counter()
    if wall_time_limit is not None:
        loop.wall_deadline = started + wall_time_limit
    if virtual_time_limit is not None:
        loop.virtual_deadline = loop.time() + virtual_time_limit

    async def entry() -> T:
        return await main()

    stats: SimStats | None = None
    interrupted = False
    try:
        task = loop.create_task(entry(), name="sim-main")
        try:
            value = loop.run_until_complete(task)
        except KeyboardInterrupt:
            interrupted = True
            raise
        except SimStalled as stalled:
            stalled.stats = stats = _stats(loop, config, started)
            raise
        except Exception as error:
            # The note is what a person needs to replay the failing schedule.
            failed = _stats(loop, config, started)
            error.add_note(
                f"sim run: strategy {config.to_dict()}, stopped at virtual time "
                f"{failed.virtual_elapsed:.6f} s after {failed.steps} steps "
                f"(step hash {failed.step_hash})"
            )
            raise
        stats = _stats(loop, config, started)
    finally:
        _shutdown(loop, main_failed=stats is None, interrupted=interrupted)
    return SimResult(value=value, stats=stats)


def _stats(loop: VirtualTimeLoop, config: StrategyConfig, started: float) -> SimStats:
    return SimStats(
        strategy=config,
        virtual_elapsed=loop.time(),
        wall_elapsed=time.perf_counter() - started,
        steps=loop.steps,
        rounds=loop.rounds,
        timer_jumps=loop.timer_jumps,
        step_hash=loop.step_hash,
        trace=tuple(loop.trace) if loop.trace is not None else None,
    )


def _shutdown(loop: VirtualTimeLoop, *, main_failed: bool, interrupted: bool = False) -> None:
    """Cancel and await leftover tasks, shut down async generators and the executor, close.
    After Ctrl-C the drain gets a shorter wall limit: the person waits for the prompt."""
    loop.virtual_deadline = None
    limit = _INTERRUPTED_DRAIN_WALL_LIMIT if interrupted else _DRAIN_WALL_LIMIT
    loop.wall_deadline = time.perf_counter() + limit
    try:
        leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in leftovers:
            task.cancel()
        try:
            if leftovers:
                loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        except SimStalled as stalled:
            if main_failed:
                # The run's own error is the one to report; the stuck cleanup is in its tail.
                return
            raise SimDeadlock(
                "leftover tasks could not be cancelled after the main coroutine finished: "
                + stalled.reason,
                virtual_time=loop.time(),
                pending=pending_tasks(loop),
            ) from stalled
    finally:
        loop.close()
