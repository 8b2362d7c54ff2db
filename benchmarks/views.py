"""Benchmark: the views of a run with many agents (``harness trace html`` and ``trace show``).

Run ``python -m benchmarks.views``. A scenario whose main agent spawns N subagents is run in
sim mode for three sizes (16, 64 and 256 agents; 8, 32 and 128 with ``--quick``), and the
views of each saved run are built and drawn (the HTML report, the terminal waterfall). The
figure is what the agents between the middle and the large size cost; the baseline is what
the same number of agents cost between the small and the middle size (time per added agent
times as many agents): the same work per agent. Target: at most 2x, so the views stay linear
in the number of agents (they once grew with its cube: 1,500 agents took minutes).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from benchmarks._alternate import alternate, compared
from benchmarks._figures import Figure
from harness.scenarios import run_scenario, write_run
from harness.scenarios.model import parse_scenario


def _scenario(agents: int) -> dict[str, Any]:
    spawn = [
        {"name": "spawn_subagent", "input": {"task": f"task {i}", "name": f"s{i}"}}
        for i in range(agents)
    ]
    return {
        "name": f"agents_{agents}",
        "description": "A main agent that spawns many subagents at once.",
        "runtime": {"prompt": "Split the work."},
        "model": {
            "agents": {
                "main": {
                    "turns": [
                        {"tool_use": spawn},
                        {"when": {"tool_result_for": "spawn_subagent"}, "text": "done"},
                    ]
                },
                **{f"s{i}": {"turns": [{"text": f"result {i}"}]} for i in range(agents)},
            }
        },
        "oracles": ["agents_completed"],
        "expect": {"buggy": ["agents_completed"], "reproduces": "sometimes"},
        "budget": {"virtual": 3600, "wall": 3600},
    }


def saved_run(agents: int, root: Path) -> Path:
    """A run directory of the scenario with ``agents`` subagents (a real sim run)."""
    scenario = parse_scenario(yaml.safe_dump(_scenario(agents)), path=f"agents_{agents}.yaml")
    return write_run(run_scenario(scenario, policy="fixed"), scenario, root)


VIEWS = ("trace html", "trace show")


def time_view(run_dir: Path, view: str) -> float:
    """Seconds to build and draw ``view`` of ``run_dir``: the HTML report or the terminal
    waterfall."""
    from rich.console import Console

    from harness.views import build_view
    from harness.views.html import render_html
    from harness.views.terminal import render

    started = time.perf_counter()
    if view == "trace html":
        render_html(build_view(run_dir))
    else:
        render(build_view(run_dir), Console(file=io.StringIO(), width=120))
    return time.perf_counter() - started


def figures(*, quick: bool = False) -> list[Figure]:
    # At most 256: a scenario turn starts at most that many tool calls at once.
    sizes = (8, 32, 128) if quick else (16, 64, 256)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {n: saved_run(n, Path(tmp)) for n in sizes}
        # Each round times every size of each view; the first (untimed) one warms imports.
        times = alternate(
            {f"{view} {n}": partial(time_view, runs[n], view) for view in VIEWS for n in sizes},
            3 if quick else 5,
        )
    tiny, small, large = sizes
    out: list[Figure] = []
    for view in VIEWS:
        # Per round: the growth from small to large, and what the small sizes' per-agent cost
        # predicts for it.
        t = {n: times[f"{view} {n}"] for n in sizes}
        grown = [b - a for a, b in zip(t[small], t[large], strict=True)]
        predicted = [
            max((b - a) / (small - tiny), 1e-9) * (large - small)
            for a, b in zip(t[tiny], t[small], strict=True)
        ]
        out.append(
            compared(
                f"{view}: agents {small:,} -> {large:,} (baseline: {tiny} -> {small}, per agent)",
                {"grown": grown, "predicted": predicted},
                "grown",
                "predicted",
                "s",
                target="<= 2x",
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[64, 128, 256])
    args = parser.parse_args()
    print(f"{'agents':>7} {'html s':>8} {'show s':>8} {'html ms/agent':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for agents in args.agents:
            run_dir = saved_run(agents, Path(tmp))
            html, show = (time_view(run_dir, view) for view in VIEWS)
            print(f"{agents:>7} {html:>8.2f} {show:>8.2f} {html / agents * 1000:>14.2f}")


if __name__ == "__main__":
    main()
