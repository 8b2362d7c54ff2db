"""Benchmark: cold start-up and peak memory of the ``harness`` command.

Run ``python -m benchmarks.startup``. Every measurement is a fresh interpreter
(``python -m harness ...``), imports included:

1. Cold start-up: the commands a person types to find their way (``harness --help``,
   ``harness run --help``, ``harness list``, ``harness schema``, a usage error: ``harness run``
   with no scenario) and ``harness run --all``, alternating with a bare interpreter start
   (``python -c pass``, printed for reference, not a baseline: it does none of the work);
   medians.
2. Peak RSS (``ru_maxrss`` of the child, read by a small parent process so no other child
   counts): ``harness run --all``, and ``harness explore cascade_random`` at a small and a
   large number of runs (100 and 1000), which must not grow with the number of runs.

Targets: the commands of 1. each <= 0.3 s (they import neither the runtime nor the SDKs);
cold ``harness run --all`` <= 15 s; explore peak RSS at 1000 runs <= 1.10x at 100.

``--compare PYTHON`` also times the same commands under another interpreter that has the
harness installed (an older version, say), alternating with this one, and prints both.
"""

from __future__ import annotations

import argparse
import json
import resource
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


# name -> (arguments, expected exit status); the quick commands a person types first.
QUICK: dict[str, tuple[list[str], int]] = {
    "--help": (["--help"], 0),
    "run --help": (["run", "--help"], 0),
    "list": (["list"], 0),
    "schema": (["schema"], 0),
    "usage error": (["run"], 2),
}


def _wall(command: list[str], cwd: str, status: int = 0) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, timeout=300, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != status:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"{' '.join(command[2:])} exited {done.returncode}: {tail}")
    return elapsed


def cold_starts(
    repeat: int, *, python: str = sys.executable, run_all: bool = True
) -> dict[str, float]:
    """Median seconds of a bare interpreter, the quick commands and ``harness run --all``
    (each a fresh ``python -m harness`` of ``python``), the commands alternating."""
    harness = [python, "-m", "harness"]
    with tempfile.TemporaryDirectory() as tmp:
        commands = {"bare": ([python, "-c", "pass"], 0)}
        commands |= {name: ([*harness, *args], status) for name, (args, status) in QUICK.items()}
        if run_all:
            commands["run --all"] = ([*harness, "run", "--all", "--out", f"{tmp}/runs"], 0)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(repeat):
            for name, (command, status) in commands.items():
                samples[name].append(_wall(command, tmp, status))
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
    # No baseline: a bare interpreter does none of the work, so a ratio to it means nothing.
    quick_rows = [
        make(f"cold start: harness {name}", cold[name], "s", target="<= 0.3 s") for name in QUICK
    ]
    return [
        *quick_rows,
        make("cold start: harness run --all", cold["run --all"], "s", target="<= 15 s"),
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
    parser.add_argument(
        "--compare",
        metavar="PYTHON",
        help="also time the quick commands under this interpreter (another install)",
    )
    args = parser.parse_args()
    if args.compare:
        _compare(args.compare, args.repeat)
        return
    cold = cold_starts(args.repeat)
    print(f"cold start, median of {args.repeat}")
    for name, seconds in cold.items():
        print(f"  {name:<12} {seconds:8.3f} s")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"peak RSS of run --all: {peak_rss_mib(['run', '--all', '--out', tmp]):.1f} MiB")
    for runs in args.runs:
        print(f"peak RSS of explore --runs {runs}: {peak_rss_mib(_explore(runs)):.1f} MiB")


def _cpu(command: list[str], cwd: str, status: int) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the child's) of one run of ``command``: the CPU
    time barely moves when other processes load the machine, the wall time does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = _wall(command, cwd, status)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _compare(other: str, repeat: int) -> None:
    """The quick commands under ``other`` and this interpreter, alternating; medians of wall
    and CPU seconds."""
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            for side, python in (("before", other), ("after", sys.executable)):
                commands = {"bare": ([python, "-c", "pass"], 0)}
                commands |= {
                    name: ([python, "-m", "harness", *args], status)
                    for name, (args, status) in QUICK.items()
                }
                for name, (command, status) in commands.items():
                    samples.setdefault((side, name), []).append(_cpu(command, tmp, status))
    print(f"cold start, median of {repeat}, wall / CPU seconds")
    print(f"  before: {other}\n  after:  {sys.executable}")
    for name in ("bare", *QUICK):
        cells = []
        for side in ("before", "after"):
            walls, cpus = zip(*samples[(side, name)], strict=True)
            cells.append(f"{statistics.median(walls):7.3f} / {statistics.median(cpus):6.3f}")
        print(f"  {name:<12} before {cells[0]}   after {cells[1]}")


if __name__ == "__main__":
    main()
