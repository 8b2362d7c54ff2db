"""Scheduling strategies: determinism by seed, exploration of interleavings, legal reorderings."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.sim import STRATEGIES, StrategyConfig, run_sim

TASKS = 6
ROUNDS = 3


def interleaving_program() -> Callable[[], Awaitable[tuple[int, ...]]]:
    """Six tasks that each yield and log three times: the log is the interleaving."""

    async def main() -> tuple[int, ...]:
        log: list[int] = []

        async def worker(ident: int) -> None:
            for _ in range(ROUNDS):
                await asyncio.sleep(0)
                log.append(ident)

        await asyncio.gather(*(worker(i) for i in range(TASKS)))
        return tuple(log)

    return main


def blocks(log: tuple[int, ...]) -> int:
    return len(list(itertools.groupby(log)))


def test_fifo_is_asyncios_own_order_for_every_seed() -> None:
    stock = asyncio.run(interleaving_program()())

    outcomes = {run_sim(interleaving_program(), seed=seed).value for seed in range(10)}

    assert outcomes == {stock}


@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_seeded_strategies_explore_several_interleavings(strategy: str) -> None:
    params = {"steps": 60} if strategy == "pct" else None
    outcomes = {
        run_sim(interleaving_program(), seed=seed, strategy=strategy, strategy_params=params).value
        for seed in range(20)
    }

    assert len(outcomes) > 1
    for outcome in outcomes:
        assert sorted(outcome) == sorted(list(range(TASKS)) * ROUNDS)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_seed_same_schedule(strategy: str) -> None:
    first = run_sim(interleaving_program(), seed=11, strategy=strategy, record_trace=True)
    second = run_sim(interleaving_program(), seed=11, strategy=strategy, record_trace=True)

    assert first.value == second.value
    assert first.stats.step_hash == second.stats.step_hash
    assert first.stats.trace == second.stats.trace
    assert first.stats.steps == second.stats.steps
    assert first.stats.trace is not None
    assert len(first.stats.trace) == first.stats.steps


@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_different_seeds_give_different_schedules(strategy: str) -> None:
    params = {"steps": 60} if strategy == "pct" else None
    hashes = {
        run_sim(
            interleaving_program(), seed=seed, strategy=strategy, strategy_params=params
        ).stats.step_hash
        for seed in range(10)
    }
    fifo_hash = run_sim(interleaving_program(), seed=0).stats.step_hash

    assert len(hashes) > 1
    assert fifo_hash not in hashes or len(hashes) > 2


def test_strategies_differ_from_each_other() -> None:
    hashes = {
        name: run_sim(interleaving_program(), seed=5, strategy=name).stats.step_hash
        for name in STRATEGIES
    }

    assert len(set(hashes.values())) == 3


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_callbacks_from_one_source_keep_their_order(strategy: str) -> None:
    async def main() -> dict[str, list[int]]:
        loop = asyncio.get_running_loop()
        seen: dict[str, list[int]] = {"a": [], "b": [], "c": []}

        async def producer(name: str) -> None:
            for step in range(3):
                for k in range(5):
                    loop.call_soon(seen[name].append, step * 5 + k)
                await asyncio.sleep(0)

        await asyncio.gather(*(producer(name) for name in seen))
        await asyncio.sleep(0)
        return seen

    for seed in range(15):
        result = run_sim(main, seed=seed, strategy=strategy)
        assert result.value == {name: list(range(15)) for name in "abc"}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_wakeup_runs_after_what_its_waker_scheduled_first(strategy: str) -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        log: list[str] = []
        gate = asyncio.Event()

        async def waiter(name: str) -> None:
            await gate.wait()
            log.append(name)

        async def noise() -> None:
            for _ in range(5):
                await asyncio.sleep(0)
                log.append("noise")

        async def opener() -> None:
            await asyncio.sleep(0)
            loop.call_soon(log.append, "scheduled-before-set")
            gate.set()

        await asyncio.gather(waiter("w1"), waiter("w2"), noise(), opener())
        return log

    for seed in range(20):
        log = run_sim(main, seed=seed, strategy=strategy).value
        first = log.index("scheduled-before-set")
        assert first < log.index("w1")
        assert first < log.index("w2")


def test_timers_due_at_the_same_instant_are_reordered_under_random() -> None:
    async def main() -> tuple[str, ...]:
        order: list[str] = []

        async def sleeper(name: str) -> None:
            await asyncio.sleep(10)
            order.append(name)

        await asyncio.gather(*(sleeper(name) for name in "abcd"))
        return tuple(order)

    fifo = {run_sim(main, seed=seed).value for seed in range(10)}
    shuffled = {run_sim(main, seed=seed, strategy="random").value for seed in range(10)}

    assert fifo == {("a", "b", "c", "d")}
    assert len(shuffled) > 1


def test_pct_without_change_points_runs_each_task_to_its_end() -> None:
    for seed in range(10):
        log = run_sim(
            interleaving_program(), seed=seed, strategy="pct", strategy_params={"depth": 1}
        ).value
        assert blocks(log) == TASKS


def test_pct_change_points_preempt_a_running_task() -> None:
    logs = [
        run_sim(
            interleaving_program(),
            seed=seed,
            strategy="pct",
            strategy_params={"depth": 4, "steps": 40},
        ).value
        for seed in range(20)
    ]

    assert any(blocks(log) > TASKS for log in logs)


def test_pct_does_not_starve_a_writer_behind_a_spinning_reader() -> None:
    async def main() -> int:
        state = {"flag": False, "spins": 0}

        async def spinner() -> None:
            while not state["flag"]:
                state["spins"] += 1
                await asyncio.sleep(0)

        async def writer() -> None:
            for _ in range(3):
                await asyncio.sleep(0)
            state["flag"] = True

        await asyncio.gather(spinner(), writer())
        return state["spins"]

    for seed in range(10):
        result = run_sim(
            main,
            seed=seed,
            strategy="pct",
            strategy_params={"depth": 1, "starvation_limit": 50},
            wall_time_limit=30,
        )
        assert result.value <= 200


def test_strategy_config_round_trips() -> None:
    config = StrategyConfig.create("pct", seed=9, params={"depth": 2})
    record = config.to_dict()

    assert record == {
        "name": "pct",
        "seed": 9,
        "params": {"depth": 2, "steps": 10_000, "starvation_limit": 1_000},
    }
    assert StrategyConfig.from_dict(record) == config


def test_stats_record_the_strategy() -> None:
    stats = run_sim(interleaving_program(), seed=4, strategy="random").stats

    assert stats.to_dict()["strategy"] == {"name": "random", "seed": 4, "params": {}}
    assert stats.to_dict()["step_hash"] == stats.step_hash


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("lifo", None, "strategy"),
        ("random", {"depth": 2}, "strategy_params.depth"),
        ("pct", {"depth": 0}, "strategy_params.depth"),
        ("pct", {"steps": "many"}, "strategy_params.steps"),
        ("pct", {"depth": True}, "strategy_params.depth"),
    ],
)
def test_bad_strategy_input_is_a_config_error(
    name: str, params: dict[str, object] | None, field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        StrategyConfig.create(name, seed=0, params=params)

    assert caught.value.field == field


_HASH_PROGRAM = """
from tests.unit.test_sim_strategies import interleaving_program
from harness.sim import STRATEGIES, run_sim
for name in STRATEGIES:
    print(name, run_sim(interleaving_program(), seed=21, strategy=name).stats.step_hash)
"""


@pytest.mark.integration
def test_schedule_hash_is_the_same_across_processes_and_hash_seeds() -> None:
    def hashes(hash_seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", _HASH_PROGRAM],
            capture_output=True,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            timeout=60,
            check=True,
        )
        return done.stdout

    first, second = hashes("1"), hashes("2")
    in_process = "".join(
        f"{name} {run_sim(interleaving_program(), seed=21, strategy=name).stats.step_hash}\n"
        for name in STRATEGIES
    )

    assert first == second == in_process
