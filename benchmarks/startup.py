"""Benchmark: cold start-up and peak memory of the ``harness`` command.

Run ``python -m benchmarks.startup``. Every measurement is a fresh interpreter
(``python -m harness ...``), imports included:

1. Cold start-up: ``harness --help`` and ``harness run --all``, alternating with a bare
   interpreter start (``python -c pass``, the baseline); medians.
2. Peak RSS (``ru_maxrss`` of the child, read by a small parent process so no other child
   counts): ``harness run --all``, and ``harness explore cascade_random`` at a small and a
   large number of runs (100 and 1000), which must not grow with the number of runs.

Targets: cold ``harness run --all`` <= 15 s; explore peak RSS at 1000 runs <= 1.10x at 100.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks._figures import Figure, make

HARNESS = [sys.executable, "-m", "harness"]
BARE = [sys.executable, "-c", "pass"]
EXPLORE_TARGET = "cascade_random"

# Runs the command given as arguments and prints its exit status and peak RSS in KiB. A fresh
# parent, so RUSAGE_CHILDREN holds that one child only.
_RSS_PROBE = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"status": done.returncode, "rss_kib": usage.ru_maxrss,
                  "stderr": done.stderr.decode(errors="replace")[-400:]}))
"""


def _wall(command: list[str], cwd: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, timeout=300, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"{' '.join(command[2:])} exited {done.returncode}: {tail}")
    return elapsed


def cold_starts(repeat: int) -> dict[str, float]:
    """Median seconds of a bare interpreter, ``harness --help`` and ``harness run --all``."""
    samples: dict[str, list[float]] = {"bare": [], "help": [], "run --all": []}
    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "bare": BARE,
            "help": [*HARNESS, "--help"],
            "run --all": [*HARNESS, "run", "--all", "--out", f"{tmp}/runs"],
        }
        for _ in range(repeat):
            for name, command in commands.items():
                samples[name].append(_wall(command, tmp))
    return {name: statistics.median(values) for name, values in samples.items()}


def peak_rss_mib(arguments: list[str]) -> float:
    """Peak RSS of ``harness <arguments>`` run in a fresh process, in MiB."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-c", _RSS_PROBE, *HARNESS, *arguments]
        out = subprocess.run(
            command, cwd=tmp, capture_output=True, text=True, timeout=900, check=True
        ).stdout
    result = json.loads(out)
    if result["status"] != 0:
        raise RuntimeError(
            f"harness {' '.join(arguments)} exited {result['status']}: {result['stderr']}"
        )
    # Linux reports ru_maxrss in KiB.
    return float(result["rss_kib"]) / 1024


def _explore(runs: int) -> list[str]:
    return ["explore", EXPLORE_TARGET, "--runs", str(runs), "--no-db", "--json"]


def figures(*, quick: bool = False) -> list[Figure]:
    """Cold start-up of ``--help`` and ``run --all``; peak RSS of ``run --all`` and of
    ``explore`` at a small and a large number of runs."""
    repeat, small, large = (3, 50, 200) if quick else (5, 100, 1000)
    cold = cold_starts(repeat)
    with tempfile.TemporaryDirectory() as tmp:
        run_all_rss = peak_rss_mib(["run", "--all", "--out", f"{tmp}/runs"])
    small_rss = peak_rss_mib(_explore(small))
    large_rss = peak_rss_mib(_explore(large))
    return [
        make("cold start: harness --help", cold["help"], "s", baseline=cold["bare"]),
        make(
            "cold start: harness run --all",
            cold["run --all"],
            "s",
            baseline=cold["bare"],
            target="<= 15 s",
        ),
        make("peak RSS: harness run --all", run_all_rss, "MiB"),
        make(
            f"peak RSS: harness explore {EXPLORE_TARGET} --runs {large} (baseline --runs {small})",
            large_rss,
            "MiB",
            baseline=small_rss,
            target="<= 1.10x",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="cold starts per command")
    parser.add_argument(
        "--runs", type=int, nargs=2, default=[100, 1000], metavar=("SMALL", "LARGE")
    )
    args = parser.parse_args()
    cold = cold_starts(args.repeat)
    print(f"cold start, median of {args.repeat}")
    for name, seconds in cold.items():
        print(f"  {name:<12} {seconds:8.3f} s")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"peak RSS of run --all: {peak_rss_mib(['run', '--all', '--out', tmp]):.1f} MiB")
    for runs in args.runs:
        print(f"peak RSS of explore --runs {runs}: {peak_rss_mib(_explore(runs)):.1f} MiB")


if __name__ == "__main__":
    main()
