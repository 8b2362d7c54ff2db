"""The virtual-time loop: clock jumps, exact deadlines, deadlocks, budgets, cleanup."""

from __future__ import annotations

import asyncio
import heapq
import socket
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

import anyio
import pytest

from harness.errors import ConfigError, HarnessDefect, RuntimeFailure
from harness.sim import STRATEGIES, SimBudgetExceeded, SimDeadlock, VirtualTimeLoop, run_sim
from harness.sim import loop as loop_module
from harness.sim.loop import TESTED_PYTHON


def test_sleep_jumps_the_virtual_clock_exactly() -> None:
    async def main() -> tuple[float, float]:
        start = anyio.current_time()
        await anyio.sleep(150)
        return start, anyio.current_time()

    result = run_sim(main, seed=0)

    assert result.value == (0.0, 150.0)
    assert result.stats.virtual_elapsed == 150.0
    assert result.stats.timer_jumps == 1
    print(f"150 virtual seconds in {result.stats.wall_elapsed * 1000:.2f} ms wall")


def test_fail_after_fires_at_exactly_the_virtual_deadline() -> None:
    async def main() -> float:
        await anyio.sleep(3.25)
        try:
            with anyio.fail_after(150):
                await anyio.sleep(10_000)
        except TimeoutError:
            return anyio.current_time()
        raise AssertionError("fail_after did not fire")

    assert run_sim(main, seed=0).value == 153.25


def test_timers_fire_in_deadline_order_with_task_groups() -> None:
    async def main() -> list[tuple[str, float]]:
        fired: list[tuple[str, float]] = []

        async def sleeper(name: str, seconds: float) -> None:
            await anyio.sleep(seconds)
            fired.append((name, anyio.current_time()))

        async with anyio.create_task_group() as tg:
            for name, seconds in (("c", 30.0), ("a", 10.0), ("b", 20.0)):
                tg.start_soon(sleeper, name, seconds)
        return fired

    result = run_sim(main, seed=0)

    assert result.value == [("a", 10.0), ("b", 20.0), ("c", 30.0)]
    assert result.stats.virtual_elapsed == 30.0


def test_asyncio_wait_for_and_call_later_use_virtual_time() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        later = loop.create_future()
        loop.call_later(42.5, later.set_result, None)
        await later
        at_callback = loop.time()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), timeout=7.5)
        return at_callback, loop.time()

    assert run_sim(main, seed=0).value == (42.5, 50.0)


def test_deadlock_is_reported_with_the_pending_tasks() -> None:
    async def main() -> None:
        gate = anyio.Event()

        async def waiter() -> None:
            await gate.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter, name="stuck-waiter")

    with pytest.raises(SimDeadlock) as caught:
        run_sim(main, seed=0)

    error = caught.value
    # The system under test hangs: its failure, not a defect of the harness.
    assert isinstance(error, RuntimeFailure)
    assert not isinstance(error, HarnessDefect)
    names = [task.name for task in error.pending]
    assert "stuck-waiter" in names
    assert "sim-main" in names
    stuck = next(task for task in error.pending if task.name == "stuck-waiter")
    assert any("waiter" in frame for frame in stuck.awaiting)
    assert "sim deadlock" in str(error)
    assert "stuck-waiter" in str(error)
    assert error.stats is not None


def test_deadlock_after_virtual_time_passed_reports_that_time() -> None:
    async def main() -> None:
        await anyio.sleep(12)
        await asyncio.get_running_loop().create_future()

    with pytest.raises(SimDeadlock) as caught:
        run_sim(main, seed=0)

    assert caught.value.virtual_time == 12.0


def test_threads_from_before_the_run_do_not_delay_deadlock_detection() -> None:
    stop = threading.Event()
    bystander = threading.Thread(target=stop.wait, name="bystander")
    bystander.start()

    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    try:
        with pytest.raises(SimDeadlock) as caught:
            run_sim(main, seed=0, io_wait=30)
    finally:
        stop.set()
        bystander.join()

    assert "no I/O can arrive" in str(caught.value)


def test_a_thread_started_during_the_run_is_waited_on_then_reported() -> None:
    stop = threading.Event()
    started: list[threading.Thread] = []

    async def main() -> None:
        worker = threading.Thread(target=stop.wait, name="run-worker")
        worker.start()
        started.append(worker)
        await asyncio.get_running_loop().create_future()

    try:
        with pytest.raises(SimDeadlock) as caught:
            run_sim(main, seed=0, io_wait=0.05)
    finally:
        stop.set()
        for worker in started:
            worker.join()

    assert "threads ['run-worker']" in str(caught.value)


def test_registered_real_fd_is_waited_on_then_reported() -> None:
    left, right = socket.socketpair()
    fd = left.fileno()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        loop.add_reader(fd, readable.set_result, None)
        try:
            await readable
        finally:
            loop.remove_reader(fd)

    try:
        with pytest.raises(SimDeadlock) as caught:
            run_sim(main, seed=0, io_wait=0.05)
    finally:
        left.close()
        right.close()

    assert "file descriptors" in str(caught.value)
    assert f"[{fd}]" in str(caught.value)


def test_real_io_that_arrives_is_processed() -> None:
    left, right = socket.socketpair()

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        loop.add_reader(left.fileno(), readable.set_result, None)
        try:
            right.send(b"x")
            await readable
        finally:
            loop.remove_reader(left.fileno())
        return left.recv(1)

    try:
        assert run_sim(main, seed=0).value == b"x"
    finally:
        left.close()
        right.close()


def test_worker_thread_result_is_awaited_not_reported_as_deadlock() -> None:
    release = threading.Event()

    def work() -> str:
        release.wait(5)
        return "done"

    async def main() -> str:
        asyncio.get_running_loop().call_soon(release.set)
        return await anyio.to_thread.run_sync(work)

    assert run_sim(main, seed=0, io_wait=5).value == "done"


def test_call_soon_threadsafe_from_another_thread_runs_on_the_loop() -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[str] = loop.create_future()
        thread = threading.Thread(target=loop.call_soon_threadsafe, args=(result.set_result, "hi"))
        thread.start()
        try:
            # No timeout on purpose: a pending timer would let virtual time jump past the thread.
            return await result
        finally:
            thread.join()

    assert run_sim(main, seed=0).value == "hi"


def test_virtual_budget_stops_the_run_and_lists_pending_tasks() -> None:
    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.sleep, 500, name="long-sleeper")

    with pytest.raises(SimBudgetExceeded) as caught:
        run_sim(main, seed=0, virtual_time_limit=100)

    error = caught.value
    assert error.budget == "virtual"
    assert error.virtual_time == 0.0
    assert "long-sleeper" in [task.name for task in error.pending]
    assert "virtual-time budget" in str(error)


def test_wall_budget_stops_a_livelock() -> None:
    async def main() -> None:
        # A busy loop on purpose: virtual time never moves, only the wall budget can stop it.
        while True:  # noqa: ASYNC110
            await asyncio.sleep(0)

    with pytest.raises(SimBudgetExceeded) as caught:
        run_sim(main, seed=0, wall_time_limit=0.05)

    assert caught.value.budget == "wall"
    assert [task.name for task in caught.value.pending] == ["sim-main"]


def test_main_exception_propagates_and_leftovers_are_cancelled() -> None:
    cancelled: list[str] = []

    async def main() -> None:
        async def background() -> None:
            try:
                await anyio.sleep(1_000)
            except asyncio.CancelledError:
                cancelled.append("background")
                raise

        asyncio.get_running_loop().create_task(background())
        await anyio.sleep(1)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom") as caught:
        run_sim(main, seed=13, strategy="random")

    assert cancelled == ["background"]
    (note,) = caught.value.__notes__
    assert "'name': 'random', 'seed': 13" in note
    assert "virtual time 1.000000 s" in note


def test_async_generators_are_finalized() -> None:
    closed: list[bool] = []

    async def agen():  # type: ignore[no-untyped-def]
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def main() -> int:
        gen = agen()
        value: int = await gen.__anext__()
        # Keep a reference alive past main so the loop's shutdown is what finalizes it.
        holder.append(gen)
        return value

    holder: list[object] = []
    assert run_sim(main, seed=0).value == 1
    assert closed == [True]


def test_unnamed_tasks_get_per_loop_names() -> None:
    async def main() -> list[str]:
        async def nothing() -> None:
            return None

        tasks = [asyncio.create_task(nothing()) for _ in range(2)]
        named = asyncio.create_task(nothing(), name="given")
        await asyncio.gather(*tasks, named)
        return [task.get_name() for task in [*tasks, named]]

    first = run_sim(main, seed=0).value
    second = run_sim(main, seed=0).value
    assert first == ["sim-task-2", "sim-task-3", "given"]
    assert second == first


def test_refuses_to_run_inside_a_running_loop() -> None:
    async def inner() -> None:
        return None

    async def outer() -> None:
        run_sim(inner, seed=0)

    with pytest.raises(HarnessDefect, match="cannot be called from inside a running"):
        asyncio.run(outer())


@pytest.mark.parametrize(
    ("option", "value"), [("virtual_time_limit", 0), ("wall_time_limit", -1.0)]
)
def test_bad_budget_is_a_config_error(option: str, value: float) -> None:
    async def main() -> None:
        return None

    with pytest.raises(ConfigError, match=option):
        run_sim(main, seed=0, **{option: value})


def test_loop_is_closed_and_no_loop_left_running() -> None:
    captured: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        captured.append(asyncio.get_running_loop())

    run_sim(main, seed=0)

    assert isinstance(captured[0], VirtualTimeLoop)
    assert captured[0].is_closed()
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_timers_due_at_one_instant_fire_in_scheduling_order() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        fired: list[str] = []
        done = loop.create_future()
        for name in ("first", "second", "third"):
            loop.call_later(10, fired.append, name)
        loop.call_later(10, done.set_result, None)
        await done
        return fired

    assert run_sim(main, seed=0).value == ["first", "second", "third"]


def test_a_timer_due_now_fires_next_round_while_other_work_is_ready() -> None:
    async def main() -> tuple[list[str], float]:
        loop = asyncio.get_running_loop()
        fired: list[str] = []
        loop.call_at(loop.time(), fired.append, "timer")
        for _ in range(3):
            await asyncio.sleep(0)
        return fired, loop.time()

    assert run_sim(main, seed=0).value == (["timer"], 0.0)


def test_cancelled_timers_never_fire_and_do_not_pile_up() -> None:
    async def main() -> tuple[list[int], int]:
        loop = asyncio.get_running_loop()
        fired: list[int] = []
        most = 0
        # A cancel scope's pattern: a deadline timer per call, cancelled when the call returns.
        for i in range(10_000):
            timer = loop.call_later(1 + i % 50, fired.append, i)
            if i % 100:
                timer.cancel()
            most = max(most, len(loop._timers))  # type: ignore[attr-defined]
        await asyncio.sleep(100)
        return fired, most

    fired, most = run_sim(main, seed=0).value

    kept = list(range(0, 10_000, 100))
    assert sorted(fired) == kept
    assert fired == sorted(kept, key=lambda i: (1 + i % 50, i))
    assert most <= 2 * 100 + 1


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_thread_safe_calls_join_every_strategy(strategy: str) -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        got: list[int] = []
        done: asyncio.Future[None] = loop.create_future()

        def push(value: int) -> None:
            got.append(value)
            if len(got) == 50:
                done.set_result(None)

        def worker() -> None:
            for value in range(50):
                loop.call_soon_threadsafe(push, value)

        thread = threading.Thread(target=worker)
        thread.start()
        try:
            # No timer on purpose: a pending timer would let virtual time jump past the thread.
            await done
        finally:
            thread.join()
        return got

    got = run_sim(main, seed=3, strategy=strategy).value

    # Each thread-safe call is a new source: random and pct may reorder them, fifo may not.
    assert sorted(got) == list(range(50))
    if strategy == "fifo":
        assert got == list(range(50))


def test_untested_python_is_refused_with_a_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop_module, "_state", "unchecked")
    monkeypatch.setattr(loop_module, "TESTED_PYTHON", ((3, 99),))

    with pytest.raises(HarnessDefect) as caught:
        VirtualTimeLoop()

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"Python {version} is not a version the sim loop is tested on" in str(caught.value)
    assert "(tested: CPython 3.99)" in str(caught.value)
    assert "--mode live" in str(caught.value)


def test_a_changed_round_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def round_without_selector(self: asyncio.BaseEventLoop) -> None:
        return None

    monkeypatch.setattr(loop_module, "_state", "unchecked")
    monkeypatch.setattr(asyncio.BaseEventLoop, "_run_once", round_without_selector)

    with pytest.raises(HarnessDefect, match=r"no longer uses _ready; .* no longer uses select"):
        VirtualTimeLoop()


def test_a_timer_that_bypasses_call_at_is_refused_by_the_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a future asyncio whose call_later no longer goes through call_at would do.
    def call_later(
        self: asyncio.BaseEventLoop, delay: float, callback: Any, *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        timer = asyncio.TimerHandle(self.time() + delay, callback, args, self, context)
        heapq.heappush(self._scheduled, timer)  # type: ignore[attr-defined]
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    monkeypatch.setattr(loop_module, "_state", "unchecked")
    monkeypatch.setattr(asyncio.BaseEventLoop, "call_later", call_later)

    with pytest.raises(HarnessDefect, match=r"a probe run failed: .*without call_at"):
        VirtualTimeLoop()


def test_tested_versions_match_the_package_metadata() -> None:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    prefix = "Programming Language :: Python :: 3."
    classified = sorted(
        (3, int(c.removeprefix(prefix))) for c in project["classifiers"] if c.startswith(prefix)
    )
    lowest, highest = TESTED_PYTHON[0], TESTED_PYTHON[-1]

    assert classified == sorted(TESTED_PYTHON)
    assert project["requires-python"] == f">={lowest[0]}.{lowest[1]},<3.{highest[1] + 1}"
