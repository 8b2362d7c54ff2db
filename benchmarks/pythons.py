"""Benchmark: sim mode on each supported Python, side by side.

    python -m benchmarks.pythons PYTHON [PYTHON ...] [--rounds 3] [--runs 200]

Each PYTHON is an interpreter with this package installed (``.ci/run`` leaves one venv per
interpreter, e.g. ``.venv-ci-3.12.1/bin/python``); the interpreter running this is the baseline.
Run from the repository root. In rounds that alternate the interpreters, so that each sees the
same load on a shared machine, each measures in a fresh process of its own:

- the sim run of ``cascade`` under each policy (median wall of 5 runs after a warm-up);
- ``harness explore cascade_random`` sim runs per second with ``--jobs 1`` and ``--jobs 2``
  (``--runs`` seeds, pool start-up included for ``--jobs 2``).

Prints each interpreter's medians over the rounds and the median of its per-round ratios to the
baseline (for wall time lower is better, for runs/s higher).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

FIGURES = (
    ("cascade (buggy) sim run, median wall", "ms"),
    ("cascade (fixed) sim run, median wall", "ms"),
    ("explore cascade_random --jobs 1", "runs/s"),
    ("explore cascade_random --jobs 2", "runs/s"),
)


def measure(runs: int) -> dict[str, float]:
    """This interpreter's figures (run in a child process per interpreter and round)."""
    from benchmarks.explore import NAME
    from benchmarks.scenarios import measure as scenario_walls
    from harness.explore import explore
    from harness.scenarios import resolve

    walls = {policy: wall for _, policy, wall, _ in scenario_walls(["cascade"], 5)}
    scenario, source = resolve(NAME)
    explore(scenario, source=source, runs=5)  # warm imports and caches
    one = explore(scenario, source=source, runs=runs, jobs=1).runs_per_s
    explore(scenario, source=source, runs=4, jobs=2)  # the forkserver, once per process
    two = explore(scenario, source=source, runs=runs, jobs=2).runs_per_s
    values = (walls["buggy"] * 1000, walls["fixed"] * 1000, one, two)
    return {name: value for (name, _), value in zip(FIGURES, values, strict=True)}


def _child(python: str, runs: int) -> dict[str, float]:
    done = subprocess.run(
        [python, "-m", "benchmarks.pythons", "--child", "--runs", str(runs)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def _version(python: str) -> str:
    done = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pythons", nargs="*", help="interpreters with the package installed")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the interpreters")
    parser.add_argument("--runs", type=int, default=200, help="seeds per explore measurement")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.runs)))
        return
    pythons = [sys.executable, *args.pythons]
    names = [_version(python) for python in pythons]
    results: list[list[dict[str, float]]] = [[] for _ in pythons]
    for round_ in range(args.rounds):
        # Alternate the order too: the first process of a round may see a different machine.
        order = range(len(pythons)) if round_ % 2 == 0 else reversed(range(len(pythons)))
        for index in order:
            results[index].append(_child(pythons[index], args.runs))
    print(f"{'figure':40} {'python':>8} {'median':>10} {'unit':>7} {'vs ' + names[0]:>11}")
    for figure, unit in FIGURES:
        for index, name in enumerate(names):
            values = [figures[figure] for figures in results[index]]
            ratios = [
                mine[figure] / base[figure]
                for mine, base in zip(results[index], results[0], strict=True)
            ]
            print(
                f"{figure:40} {name:>8} {statistics.median(values):>10.2f} {unit:>7} "
                f"{statistics.median(ratios):>10.2f}x"
            )


if __name__ == "__main__":
    main()
