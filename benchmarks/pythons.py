"""Benchmark: sim mode on each supported Python, side by side.

    python -m benchmarks.pythons [PYTHON ...] [--rounds 3] [--runs 200]

Each PYTHON is an interpreter with this package installed; by default the ``.venv-ci-<version>``
venvs that ``.ci/run`` leaves in the repository (run from its root). The interpreter running
this is the baseline. In rounds that alternate the interpreters, so that each sees the same load
on a shared machine, each measures in a fresh process of its own:

- the sim run of ``cascade`` under each policy (median wall of 5 runs after a warm-up);
- ``harness explore cascade_random`` sim runs per second with ``--jobs 1`` and ``--jobs 2``
  (``--runs`` seeds, pool start-up included for ``--jobs 2``).

Prints each interpreter's medians over the rounds and the median of its per-round ratios to the
baseline (for wall time lower is better, for runs/s higher).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks._figures import Figure, make, note_row

FIGURES = (
    ("sim run cascade (buggy), median wall", "ms"),
    ("sim run cascade (fixed), median wall", "ms"),
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


def venvs() -> list[str]:
    """The ``.venv-ci-*`` interpreters here whose version is not this interpreter's."""
    found = sorted(Path.cwd().glob(".venv-ci-*/bin/python"))
    return [str(p) for p in found if _version(str(p)) != platform.python_version()]


def compare(
    pythons: list[str], *, rounds: int, runs: int
) -> list[tuple[str, list[dict[str, float]]]]:
    """(version, figures per round) of this interpreter then each of ``pythons``."""
    every = [sys.executable, *pythons]
    results: list[list[dict[str, float]]] = [[] for _ in every]
    for round_ in range(rounds):
        # Alternate the order too: the first process of a round may see a different machine.
        order = range(len(every)) if round_ % 2 == 0 else reversed(range(len(every)))
        for index in order:
            results[index].append(_child(every[index], runs))
    return [(_version(python), rows) for python, rows in zip(every, results, strict=True)]


def figures(*, quick: bool = False) -> list[Figure]:
    """Each figure on every other interpreter found (``.venv-ci-*``) against this one."""
    others = venvs()
    if not others:
        return [note_row("sim mode on other Pythons", "no other .venv-ci-* here (.ci/run)")]
    measured = compare(others, rounds=1 if quick else 3, runs=60 if quick else 200)
    (base_version, base), rows = measured[0], []
    for version, mine in measured[1:]:
        for figure, unit in FIGURES:
            ratios = [m[figure] / b[figure] for m, b in zip(mine, base, strict=True)]
            rows.append(
                make(
                    f"{figure}, Python {version} vs {base_version}",
                    statistics.median(m[figure] for m in mine),
                    unit,
                    baseline=statistics.median(b[figure] for b in base),
                    ratio=statistics.median(ratios),
                )
            )
    return rows


def _child(python: str, runs: int) -> dict[str, float]:
    done = subprocess.run(
        [python, "-m", "benchmarks.pythons", "--child", "--runs", str(runs)],
        capture_output=True,
        text=True,
        check=True,
    )
    measured: dict[str, float] = json.loads(done.stdout)
    return measured


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
    measured = compare(args.pythons or venvs(), rounds=args.rounds, runs=args.runs)
    base_version, base = measured[0]
    print(f"{'figure':40} {'python':>8} {'median':>10} {'unit':>7} {'vs ' + base_version:>11}")
    for figure, unit in FIGURES:
        for version, mine in measured:
            ratios = [m[figure] / b[figure] for m, b in zip(mine, base, strict=True)]
            print(
                f"{figure:40} {version:>8} {statistics.median(m[figure] for m in mine):>10.2f} "
                f"{unit:>7} {statistics.median(ratios):>10.2f}x"
            )


if __name__ == "__main__":
    main()
