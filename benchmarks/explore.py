"""Benchmark: exploration (``harness explore``) on ``cascade_random``.

Run ``python -m benchmarks.explore``. In one run, side by side:

- sim runs per second on one core (``--jobs 1``) and the speed-up with ``--jobs 2``;
- the share of seeds that hit the bug (the in-flight teardown) under the ``fifo``, ``random``
  and ``pct`` strategies, on ``cascade_random`` (timing drawn from the seed: the strategies
  tie) and on the cascade with a tie (two events at one virtual instant, where only the
  scheduler decides);
- whether failing seeds fail again when run on their own (they must: a seed is a replay);
- shrinking the first failing seed: runs spent;
- peak RSS of a fresh ``explore`` process at 100 and at 1000 runs (it must not grow);
- time to first reproduction: the harness (sim, seeded exploration) against a live-mode stress
  loop (real subprocesses, scaled real time, drawn latencies, no scheduler control), as a ratio.

Targets: >= 20 sim runs/s per core; ``--jobs 2`` >= 1.7x; every failing seed fails again;
harness first reproduction >= 50x faster.
The machine is shared: run it on an idle one for numbers to quote.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from benchmarks._alternate import Samples, alternate, compared, per_round_ratio
from benchmarks._figures import Figure, make
from harness.explore import ExploreReport, explore, shrink
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


# A control process: ready once imported, burns when told to, says when done (plain pipes).
_BURNER = """
import sys
from benchmarks.explore import _burn
print("ready", flush=True)
sys.stdin.readline()
_burn(int(sys.argv[1]))
print("done", flush=True)
"""


def _cpu_ceiling() -> float:
    """Speed-up of a pure CPU loop in 2 processes: what a shared machine allows right now."""
    n = 4_000_000
    started = time.perf_counter()
    _burn(n)
    _burn(n)
    serial = time.perf_counter() - started
    burners = [
        subprocess.Popen(
            [sys.executable, "-c", _BURNER, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    pipes = [(b.stdin, b.stdout) for b in burners if b.stdin is not None and b.stdout is not None]
    try:
        for _, out in pipes:
            out.readline()  # started and imported before timing
        started = time.perf_counter()
        for into, _ in pipes:
            into.write("go\n")
            into.flush()
        for _, out in pipes:
            out.readline()
        parallel = time.perf_counter() - started
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    return serial / parallel


def throughput(runs: int, *, rounds: int = 3) -> Samples:
    """Per round: runs/s with ``--jobs 1`` ("jobs 1") and ``--jobs 2`` ("jobs 2"), and the
    control's speed-up ("control"), alternating so the three see the same load on a shared
    machine. The forkserver is started (once per process) before timing; each ``--jobs 2``
    exploration still starts its own pool."""
    scenario, source = resolve(NAME)
    explore(scenario, source=source, runs=4, jobs=2)  # the forkserver, once per process

    def rate(jobs: int) -> Callable[[], float]:
        return lambda: explore(scenario, source=source, runs=runs, jobs=jobs).runs_per_s

    return alternate({"jobs 1": rate(1), "jobs 2": rate(2), "control": _cpu_ceiling}, rounds)


def of_ceiling(samples: Samples) -> float:
    """Median over the rounds of the ``--jobs 2`` speed-up over the control's."""
    rounds = zip(samples["jobs 1"], samples["jobs 2"], samples["control"], strict=True)
    return statistics.median(two / one / ceiling for one, two, ceiling in rounds)


def in_flight_share(report: ExploreReport) -> float:
    """Share of the runs whose failure is the in-flight teardown (the bug, not a side effect)."""
    hits = sum(s.count for s in report.signatures if s.oracle == "no_reconnect_while_in_flight")
    return hits / report.runs


def hit_rates(runs: int) -> dict[tuple[str, str], ExploreReport]:
    """(scenario, strategy) -> exploration (buggy policy) on the same seeds: ``cascade_random``
    (timing drawn from the seed) and the cascade with a tie (only the scheduler decides)."""
    return {
        (scenario.name, strategy): explore(
            scenario, source=scenario.name, runs=runs, strategy=strategy, jobs=2
        )
        for scenario in (resolve(NAME)[0], _cascade_tie())
        for strategy in STRATEGIES
    }


def rerun_failing(report: ExploreReport, most: int) -> float:
    """Share (%) of up to ``most`` failing seeds that fail again when run on their own."""
    scenario, source = resolve(NAME)
    seeds = report.failing_seeds[:most]
    again = sum(
        run_scenario(
            scenario, policy="buggy", seed=seed, strategy=report.strategy, source=source
        ).outcome
        == "reproduced"
        for seed in seeds
    )
    return again / len(seeds) * 100 if seeds else math.nan


def figures(*, quick: bool = False) -> list[Figure]:
    """Runs/s per core, the --jobs 2 speed-up with the machine's 2-process ceiling measured in
    the same rounds, the in-flight teardown share by strategy with and without a tie, and
    whether failing seeds fail again."""
    measured = throughput(60 if quick else 200, rounds=1 if quick else 3)
    rows = [
        make(
            f"explore {NAME}: sim runs/s per core (--jobs 1)",
            statistics.median(measured["jobs 1"]),
            "runs/s",
            target=">= 20",
        ),
        compared(
            f"explore {NAME}: --jobs 2 vs --jobs 1 (pool start-up included)",
            measured,
            "jobs 2",
            "jobs 1",
            "runs/s",
            target=">= 1.7x",
        ),
        make(
            "control: pure CPU loop in 2 processes vs 1 (machine ceiling now)",
            statistics.median(measured["control"]),
            "x",
        ),
        make("explore --jobs 2 speed-up / control ceiling", of_ceiling(measured), ""),
    ]
    reports = hit_rates(60 if quick else 300)
    rows += [
        make(f"explore {name} in-flight teardown, buggy, {strategy}", in_flight_share(r) * 100, "%")
        for (name, strategy), r in reports.items()
    ]
    rows.append(
        make(
            f"explore {NAME}: failing seeds that fail again when rerun",
            rerun_failing(reports[NAME, "random"], 10 if quick else 30),
            "%",
            target=">= 100",
        )
    )
    return rows


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
    one, two = (statistics.median(measured[side]) for side in ("jobs 1", "jobs 2"))
    print(f"{NAME}: {args.runs} sim runs per measurement, medians of 3 alternating rounds")
    print(f"  jobs 1: {one:7.1f} runs/s (per core)")
    speedup = per_round_ratio(measured, "jobs 2", "jobs 1")
    print(f"  jobs 2: {two:7.1f} runs/s, speed-up {speedup:.2f}x (pool start-up included)")
    print(
        f"  control: a pure CPU loop in 2 processes runs "
        f"{statistics.median(measured['control']):.2f}x (machine ceiling); explore reaches "
        f"{of_ceiling(measured) * 100:.0f} % of it"
    )
    print("in-flight teardown by strategy (buggy):")
    reports = hit_rates(args.runs)
    for (name, strategy), r in reports.items():
        low, high = r.ci95
        print(
            f"  {name:<14} {strategy:<6} {in_flight_share(r) * 100:5.1f} % of seeds (any failure "
            f"{r.hit_rate * 100:.1f} %, 95 % CI {low * 100:.1f} - {high * 100:.1f} %)"
        )
    print(
        "failing seeds that fail again when rerun: "
        f"{rerun_failing(reports[NAME, 'random'], 30):.0f} %"
    )
    first = reports[NAME, "fifo"].first_failing_seed
    if first is not None:
        result = shrink(scenario, policy="buggy", seed=first, oracle="no_reconnect_while_in_flight")
        print(f"shrink seed {first}: {len(result.steps)} simplifications in {result.attempts} runs")

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
