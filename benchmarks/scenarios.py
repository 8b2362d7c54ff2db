"""Benchmark: the scenario engine in sim mode.

Run ``python -m benchmarks.scenarios``. In one run: the wall time of every built-in scenario per
policy after imports (median of ``--repeat`` runs) and its virtual/wall ratio, then the cold
start of ``harness run --all`` (a fresh interpreter, imports included) measured as a subprocess.
Targets: each sim run <= 0.25 s, cascade virtual/wall >= 500, cold ``harness run --all`` <= 15 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from benchmarks._alternate import alternate
from benchmarks._figures import Figure, make
from harness.scenarios import Policy, Scenario, builtin_names, resolve, run_scenario
from harness.scenarios.registry import BUILTIN_DIR

FOUNDING = ("cascade", "orphaned_tool_block", "scope_leak")
POLICIES: tuple[Policy, ...] = ("buggy", "fixed")


def timed_run(scenario: Scenario, policy: Policy) -> tuple[float, float]:
    """(wall s, virtual s) of one sim run: the whole ``run_scenario`` call, as a person running
    it waits for it (the run's trace, record and judgement included, not only the loop's
    ``outcome.wall_s``)."""
    start = time.perf_counter()
    outcome = run_scenario(scenario, policy=policy)
    return time.perf_counter() - start, outcome.virtual_s


def measure(names: Iterable[str], repeat: int) -> list[tuple[str, str, float, float]]:
    """(scenario, policy, median wall s, virtual s) of each scenario under each policy."""
    rows: list[tuple[str, str, float, float]] = []
    for name in names:
        scenario, _ = resolve(name)
        for policy in POLICIES:
            timed_run(scenario, policy)  # warm caches (script parsing, imports)
            runs = [timed_run(scenario, policy) for _ in range(repeat)]
            rows.append((name, policy, statistics.median(w for w, _ in runs), runs[-1][1]))
    return rows


def bug_files() -> list[str]:
    """The public bugs written as scenario files (``scenarios/bugs/``)."""
    return sorted(str(p) for p in (BUILTIN_DIR / "bugs").glob("*.yaml"))


def bug_cost(rounds: int) -> list[Figure]:
    """Each bug file's sim runs against the founding scenarios', alternating: every round runs
    every scenario under each policy once, in a rotating order. A sim run's cost is the median
    over rounds of its wall time (one scenario, one policy, the whole ``run_scenario`` call).
    Figures: the slowest bug-file run, and its ratio to the slowest founding run (the issue's
    bound: within the founding cost)."""
    scenarios = {name: resolve(name)[0] for name in (*FOUNDING, *bug_files())}
    # A live-only bug file has no sim run to measure.
    scenarios = {name: sc for name, sc in scenarios.items() if "sim" in sc.modes}

    def side(name: str, policy: Policy) -> Callable[[], float]:
        return lambda: timed_run(scenarios[name], policy)[0]

    sides = {f"{name}|{policy}": side(name, policy) for name in scenarios for policy in POLICIES}
    cost = {key: statistics.median(values) for key, values in alternate(sides, rounds).items()}
    founding = max(v for key, v in cost.items() if key.split("|")[0] in FOUNDING)
    bugs = {key: v for key, v in cost.items() if key.split("|")[0] not in FOUNDING}
    slowest = max(bugs, key=bugs.__getitem__)
    name, policy = slowest.split("|")
    label = f"{Path(name).stem} {policy}"
    files = len(scenarios) - len(FOUNDING)
    return [
        make(
            f"sim run, slowest of {files} bug files x {len(POLICIES)} policies ({label}), "
            "median wall",
            bugs[slowest] * 1000,
            "ms",
            target="<= 25 ms",
        ),
        make(
            "sim run, slowest bug-file run vs slowest founding run, median wall",
            bugs[slowest] * 1000,
            "ms",
            baseline=founding * 1000,
            target="<= 1.00x",
        ),
    ]


def figures(*, quick: bool = False) -> list[Figure]:
    """Sim run wall time and virtual/wall ratio of each founding scenario under each policy
    (the cold ``harness run --all`` is in ``benchmarks.startup``)."""
    out: list[Figure] = []
    for name, policy, wall, virtual in measure(FOUNDING, 2 if quick else 5):
        out.append(
            make(f"sim run {name} ({policy}), median wall", wall * 1000, "ms", target="<= 250 ms")
        )
        out.append(
            make(
                f"sim run {name} ({policy}), virtual/wall",
                virtual / wall,
                "",
                target=">= 500" if name == "cascade" else "",
            )
        )
    out.extend(bug_cost(3 if quick else 9))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = measure(builtin_names(), args.repeat)
    print(f"{'scenario':<30} {'policy':<6} {'wall ms':>8} {'virtual s':>10} {'virt/wall':>10}")
    for name, policy, wall, virtual in rows:
        print(
            f"{name:<30} {policy:<6} {wall * 1000:>8.1f} {virtual:>10.1f} {virtual / wall:>10.0f}"
        )
    worst = max(r[2] for r in rows)
    cascade = min(r[3] / r[2] for r in rows if r[0] == "cascade")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "harness", "run", "--all", "--out", out],
            capture_output=True,
            check=False,
        )
        cold = time.perf_counter() - start
    print()
    print(f"{'figure':<40} {'value':>10} {'target':>10}")
    print(f"{'slowest sim run (s)':<40} {worst:>10.3f} {'<= 0.25':>10}  {_met(worst <= 0.25)}")
    print(f"{'cascade virtual/wall':<40} {cascade:>10.0f} {'>= 500':>10}  {_met(cascade >= 500)}")
    print(
        f"{'cold harness run --all (s), exit ' + str(proc.returncode):<40} {cold:>10.2f} "
        f"{'<= 15':>10}  {_met(cold <= 15 and proc.returncode == 0)}"
    )


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


if __name__ == "__main__":
    main()
