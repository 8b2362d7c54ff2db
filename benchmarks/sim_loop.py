"""Sim loop benchmark: virtual/wall ratio, and cost per step against the stock asyncio loop.

    python -m benchmarks.sim_loop [--repeat 3]

1. Virtual/wall ratio: N tasks each sleep 10 times for 1..10 virtual seconds (different per
   task), under each strategy.
2. Overhead per step: the same N tasks with zero-length sleeps (every step is a ready callback,
   no timer), on the stock ``asyncio`` selector loop and on the sim loop under each strategy,
   alternating. Microseconds per executed callback, medians of ``--repeat`` rounds; the ratio
   is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from benchmarks._alternate import Samples, alternate, compared, per_round_ratio
from benchmarks._figures import Figure, make
from harness.sim import STRATEGIES, SimStats, run_sim

SLEEPS_PER_TASK = 10


def sleeping_workload(tasks: int, *, zero: bool) -> Callable[[], Awaitable[None]]:
    async def main() -> None:
        async def worker(ident: int) -> None:
            for round_ in range(SLEEPS_PER_TASK):
                await asyncio.sleep(0 if zero else 1 + (ident + round_) % 10)

        await asyncio.gather(*(worker(i) for i in range(tasks)))

    return main


def stock_loop_wall(main: Callable[[], Awaitable[None]]) -> float:
    loop = asyncio.SelectorEventLoop()
    try:

        async def entry() -> None:
            await main()

        started = time.perf_counter()
        loop.run_until_complete(entry())
        return time.perf_counter() - started
    finally:
        loop.close()


def best_sleeping_run(size: int, strategy: str, repeat: int) -> SimStats:
    """The fastest of ``repeat`` runs of ``size`` tasks with 1-10 virtual s sleeps."""
    runs = (
        run_sim(sleeping_workload(size, zero=False), seed=1, strategy=strategy).stats
        for _ in range(repeat)
    )
    return min(runs, key=lambda stats: stats.wall_elapsed)


def cost_per_step(size: int, strategy: str, repeat: int, *, trace: bool = False) -> Samples:
    """Seconds per executed callback with zero-length sleeps on the sim loop ("sim") and the
    stock asyncio loop ("stock"), alternating, ``repeat`` rounds."""
    workload = sleeping_workload(size, zero=True)
    steps = run_sim(workload, seed=0).stats.steps

    def sim() -> float:
        stats = run_sim(workload, seed=0, strategy=strategy, record_trace=trace).stats
        return stats.wall_elapsed / steps

    return alternate({"sim": sim, "stock": lambda: stock_loop_wall(workload) / steps}, repeat)


def figures(*, quick: bool = False) -> list[Figure]:
    """Virtual/wall ratio of 100 sleeping tasks, and the cost per step of each strategy
    against the stock asyncio loop (1000 tasks, zero-length sleeps)."""
    repeat = 3 if quick else 5
    ratio = best_sleeping_run(100, "fifo", repeat).virtual_wall_ratio
    rows = [make("sim loop virtual/wall, 100 tasks x 10 sleeps (fifo)", ratio, "")]
    for strategy in STRATEGIES:
        rows.append(
            compared(
                f"sim loop cost per step vs stock asyncio, 1000 tasks ({strategy})",
                cost_per_step(1000, strategy, repeat),
                "sim",
                "stock",
                "us",
                scale=1e6,
            )
        )
    return rows


def ratio_table(sizes: list[int], repeat: int) -> None:
    print("Virtual/wall ratio (N tasks x 10 sleeps of 1-10 virtual s)")
    print(f"{'N':>6} {'strategy':>8} {'virtual s':>10} {'wall ms':>9} {'steps':>8} {'ratio':>12}")
    for size in sizes:
        for strategy in STRATEGIES:
            best = best_sleeping_run(size, strategy, repeat)
            print(
                f"{size:>6} {strategy:>8} {best.virtual_elapsed:>10.1f} "
                f"{best.wall_elapsed * 1000:>9.2f} {best.steps:>8} "
                f"{best.virtual_wall_ratio:>11,.0f}x"
            )


def overhead_table(sizes: list[int], repeat: int) -> None:
    print()
    print("Cost per executed callback, zero-length sleeps (medians of alternating rounds)")
    header = f"{'N':>6} {'steps':>8} {'stock us':>9}"
    header += "".join(f" {name + ' us':>10} {'x':>5}" for name in (*STRATEGIES, "fifo+trace"))
    print(header)
    for size in sizes:
        steps = run_sim(sleeping_workload(size, zero=True), seed=0).stats.steps
        line = ""
        for strategy, trace in (*((name, False) for name in STRATEGIES), ("fifo", True)):
            samples = cost_per_step(size, strategy, repeat, trace=trace)
            if not line:
                line = f"{size:>6} {steps:>8} {statistics.median(samples['stock']) * 1e6:>9.2f}"
            line += f" {statistics.median(samples['sim']) * 1e6:>10.2f}"
            line += f" {per_round_ratio(samples, 'sim', 'stock'):>5.2f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds per cell (medians are shown)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10, 100, 1000], help="numbers of tasks"
    )
    args = parser.parse_args()
    ratio_table(args.sizes, args.repeat)
    overhead_table(args.sizes, args.repeat)


if __name__ == "__main__":
    main()
