"""Benchmark: exploration (``harness explore``) on ``cascade_random``.

Run ``python -m benchmarks.explore``. In one run, side by side:

- sim runs per second on one core (``--jobs 1``) and the speed-up with ``--jobs 2``;
- hit rate of the ``fifo``, ``random`` and ``pct`` strategies, on ``cascade_random`` (timing
  drawn from the seed) and on the cascade with a tie (two events at one virtual instant, where
  only the scheduler decides);
- how many explorations of ``--runs 200`` (disjoint seed ranges) find the bug;
- shrinking the first failing seed: faults before and after, runs spent;
- peak RSS of a fresh ``explore`` process at 100 and at 1000 runs (it must not grow);
- time to first reproduction: the harness (sim, seeded exploration) against a live-mode stress
  loop (real subprocesses, scaled real time, drawn latencies, no scheduler control), as a ratio.

Targets (issue 8): >= 20 sim runs/s per core; ``--jobs 2`` >= 1.7x; >= 95 % of explorations of
200 runs find the bug; shrinking ends with <= 2 faults; harness first reproduction >= 50x faster.
The machine is shared: run it on an idle one for numbers to quote.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass

from benchmarks._figures import Figure, make
from harness.explore import explore, shrink
from harness.scenarios import Scenario, resolve, run_scenario

NAME = "cascade_random"
STRATEGIES = ("fifo", "random", "pct")

_RSS_PROBE = """
import json, resource, sys
from harness.explore import explore
from harness.scenarios import resolve
scenario, source = resolve(sys.argv[1])
report = explore(scenario, source=source, runs=int(sys.argv[2]))
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"runs": report.runs, "rss_kb": rss_kb}))
"""


def _rss(runs: int) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, NAME, str(runs)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    data = json.loads(out)
    return int(data["runs"]), int(data["rss_kb"])


def _cascade_tie() -> Scenario:
    base, _ = resolve("cascade")
    data = base.model_dump(mode="json")
    data["name"] = "cascade_tie"
    data["model"]["agents"]["B"]["turns"][0]["latency"] = 150
    return Scenario.model_validate(data)


def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def _cpu_ceiling() -> float:
    """Speed-up of a pure CPU loop in 2 processes: what a shared machine allows right now."""
    import multiprocessing

    n = 4_000_000
    started = time.perf_counter()
    _burn(n)
    _burn(n)
    serial = time.perf_counter() - started
    with multiprocessing.get_context("forkserver").Pool(2) as pool:
        pool.map(_burn, [1, 1])  # workers up before timing
        started = time.perf_counter()
        pool.map(_burn, [n, n])
        parallel = time.perf_counter() - started
    return serial / parallel


@dataclass(frozen=True, slots=True)
class Throughput:
    """Sim runs per second with ``--jobs 1`` and ``--jobs 2``, and the control ceiling."""

    one: float  # runs/s, one process (per core)
    two: float  # runs/s, two worker processes, pool start-up included
    ceiling: float  # speed-up of a pure CPU loop in 2 processes, measured alongside

    @property
    def speedup(self) -> float:
        return self.two / self.one

    @property
    def of_ceiling(self) -> float:
        return self.speedup / self.ceiling


def throughput(runs: int, *, rounds: int = 3) -> Throughput:
    """Medians over ``rounds`` of (jobs 1, jobs 2, control) measured back to back, so the
    three see the same load on a shared machine. The forkserver is started (once per process)
    before timing; each ``--jobs 2`` exploration still starts its own pool."""
    scenario, source = resolve(NAME)
    explore(scenario, source=source, runs=5)  # warm imports and caches
    explore(scenario, source=source, runs=4, jobs=2)  # the forkserver, once per process
    ones, twos, ceilings = [], [], []
    for _ in range(rounds):
        ones.append(explore(scenario, source=source, runs=runs, jobs=1).runs_per_s)
        twos.append(explore(scenario, source=source, runs=runs, jobs=2).runs_per_s)
        ceilings.append(_cpu_ceiling())
    return Throughput(_median(ones), _median(twos), _median(ceilings))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def hit_rates(runs: int) -> dict[str, float]:
    """Share of failing seeds (buggy policy) by scheduling strategy, on the same seeds."""
    scenario, source = resolve(NAME)
    return {
        strategy: explore(scenario, source=source, runs=runs, strategy=strategy, jobs=2).hit_rate
        for strategy in STRATEGIES
    }


def figures(*, quick: bool = False) -> list[Figure]:
    """Runs/s per core, the --jobs 2 speed-up with the machine's 2-process ceiling measured in
    the same run, hit rate by strategy; in full mode also the share of 200-run explorations
    that find the bug and the faults left after shrinking."""
    measured = throughput(60 if quick else 200, rounds=1 if quick else 3)
    rows = [
        make(
            f"explore {NAME}: sim runs/s per core (--jobs 1)",
            measured.one,
            "runs/s",
            target=">= 20",
        ),
        make(
            f"explore {NAME}: --jobs 2 vs --jobs 1 (pool start-up included)",
            measured.two,
            "runs/s",
            baseline=measured.one,
            target=">= 1.7x",
        ),
        make(
            "control: pure CPU loop in 2 processes vs 1 (machine ceiling now)",
            measured.ceiling,
            "x",
        ),
        make(
            "explore --jobs 2 speed-up / control ceiling",
            measured.of_ceiling,
            "",
        ),
    ]
    for strategy, rate in hit_rates(60 if quick else 300).items():
        rows.append(make(f"explore {NAME} hit rate, buggy, {strategy}", rate * 100, "%"))
    if not quick:
        found, explorations = _explorations_finding(10)
        rows.append(
            make(
                "explorations of 200 runs that find the bug",
                found / explorations * 100,
                "%",
                target=">= 95",
            )
        )
        scenario, source = resolve(NAME)
        first = explore(scenario, source=source, runs=200, jobs=2).first_failing_seed
        if first is not None:
            result = shrink(
                scenario, policy="buggy", seed=first, oracle="no_reconnect_while_in_flight"
            )
            rows.append(make("faults left after shrinking", result.faults_after, "", target="<= 2"))
    return rows


def _explorations_finding(explorations: int) -> tuple[int, int]:
    scenario, source = resolve(NAME)
    wide = explore(scenario, source=source, runs=200 * explorations, jobs=2)
    hits = set(wide.failing_seeds)
    found = sum(
        any(seed in hits for seed in range(k * 200, (k + 1) * 200)) for k in range(explorations)
    )
    return found, explorations


def _first_harness_hit(first_seed: int) -> tuple[float, int]:
    scenario, source = resolve(NAME)
    started = time.perf_counter()
    seed = first_seed
    while True:
        outcome = run_scenario(scenario, policy="buggy", seed=seed, source=source)
        if outcome.outcome == "reproduced":
            return time.perf_counter() - started, seed - first_seed + 1
        seed += 1


def _first_live_hit(first_seed: int, budget: float, time_scale: float) -> tuple[float, int, bool]:
    from harness.scenarios.live import run_scenario_live

    scenario, _ = resolve(NAME)
    started = time.perf_counter()
    seed, tries = first_seed, 0
    while time.perf_counter() - started < budget:
        # The naive loop: drawn latencies, real time, whatever order the OS schedules.
        drawn, _ = scenario.resolve(seed)
        outcome = run_scenario_live(drawn, policy="buggy", seed=seed, time_scale=time_scale)
        tries += 1
        if outcome.outcome == "reproduced":
            return time.perf_counter() - started, tries, True
        seed += 1
    return time.perf_counter() - started, tries, False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="runs per throughput measurement")
    parser.add_argument("--explorations", type=int, default=10, help="explorations of 200 runs")
    parser.add_argument("--live-budget", type=float, default=120.0, help="seconds; 0 skips")
    parser.add_argument("--time-scale", type=float, default=0.01)
    args = parser.parse_args()
    scenario, source = resolve(NAME)
    started = time.perf_counter()
    explore(scenario, source=source, runs=4, jobs=2)
    print(
        f"first --jobs 2 exploration (starts the forkserver): {time.perf_counter() - started:.2f} s"
    )
    measured = throughput(args.runs)
    print(f"{NAME}: {args.runs} sim runs per measurement, medians of 3 rounds")
    print(f"  jobs 1: {measured.one:7.1f} runs/s (per core)")
    print(
        f"  jobs 2: {measured.two:7.1f} runs/s, speed-up {measured.speedup:.2f}x "
        f"(pool start-up included)"
    )
    print(
        f"  control: a pure CPU loop in 2 processes runs {measured.ceiling:.2f}x (machine "
        f"ceiling); explore reaches {measured.of_ceiling * 100:.0f} % of it"
    )

    print("hit rate by strategy (buggy):")
    for strategy in STRATEGIES:
        r = explore(scenario, source=source, runs=args.runs, strategy=strategy, jobs=2)
        low, high = r.ci95
        print(
            f"  {strategy:<6} {r.hit_rate * 100:5.1f} % (95 % CI {low * 100:.1f} - "
            f"{high * 100:.1f} %), first failing seed {r.first_failing_seed}"
        )

    tie = _cascade_tie()
    print("cascade with a tie (B's call starts the instant A's times out), buggy:")
    for strategy in STRATEGIES:
        r = explore(tie, source="cascade_tie", runs=args.runs, strategy=strategy, jobs=2)
        teardown = sum(s.count for s in r.signatures if s.oracle == "no_reconnect_while_in_flight")
        print(
            f"  {strategy:<6} in-flight teardown in {teardown / r.runs * 100:5.1f} % of seeds "
            f"(any failure {r.hit_rate * 100:.1f} %)"
        )

    total = 200 * args.explorations
    wide = explore(scenario, source=source, runs=total, jobs=2)
    hits = set(wide.failing_seeds)
    found = sum(
        any(seed in hits for seed in range(k * 200, (k + 1) * 200))
        for k in range(args.explorations)
    )
    print(
        f"explorations of 200 runs that find the bug: {found}/{args.explorations} "
        f"({found / args.explorations * 100:.0f} %); hit rate over {total} seeds "
        f"{wide.hit_rate * 100:.1f} %"
    )

    first = wide.first_failing_seed
    if first is not None:
        result = shrink(scenario, policy="buggy", seed=first, oracle="no_reconnect_while_in_flight")
        print(
            f"shrink seed {first}: faults {result.faults_before} -> {result.faults_after}, "
            f"{len(result.steps)} simplifications in {result.attempts} runs"
        )

    for runs in (100, 1000):
        done, rss = _rss(runs)
        print(f"peak RSS of explore --runs {done}: {rss / 1024:.1f} MiB")

    harness_s, harness_tries = _first_harness_hit(1000)
    print(
        f"time to first reproduction from seed 1000, harness sim: {harness_s:.3f} s "
        f"({harness_tries} runs)"
    )
    if args.live_budget > 0:
        live_s, live_tries, live_found = _first_live_hit(1000, args.live_budget, args.time_scale)
        bound = "" if live_found else " (no reproduction within the budget: lower bound)"
        print(
            f"time to first reproduction, live stress loop (time scale {args.time_scale}): "
            f"{live_s:.1f} s ({live_tries} runs){bound}"
        )
        print(f"ratio live / harness: {live_s / harness_s:.0f}x")


if __name__ == "__main__":
    main()
