"""Benchmark: the views of a run with many agents (``harness trace html`` and ``trace show``).

Run ``python -m benchmarks.views``. A scenario whose main agent spawns N subagents is run in
sim mode for three sizes (10, 100 and 1,000 agents; 10, 30 and 300 with ``--quick``), and the
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
from pathlib import Path
from typing import Any

import yaml

from benchmarks._figures import Figure, make
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


def time_views(run_dir: Path) -> tuple[float, float]:
    """Seconds to build and draw the HTML report, and the terminal waterfall, of ``run_dir``."""
    from rich.console import Console

    from harness.views import build_view
    from harness.views.html import render_html
    from harness.views.terminal import render

    started = time.perf_counter()
    render_html(build_view(run_dir))
    html = time.perf_counter() - started
    started = time.perf_counter()
    render(build_view(run_dir), Console(file=io.StringIO(), width=120))
    return html, time.perf_counter() - started


def figures(*, quick: bool = False) -> list[Figure]:
    sizes = (10, 30, 300) if quick else (10, 100, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {n: saved_run(n, Path(tmp)) for n in sizes}
        time_views(runs[sizes[0]])  # warm: first use imports and compiles
        times = {n: time_views(run_dir) for n, run_dir in runs.items()}
    tiny, small, large = sizes
    out: list[Figure] = []
    for index, view in enumerate(("trace html", "trace show")):
        per_agent = (times[small][index] - times[tiny][index]) / (small - tiny)
        out.append(
            make(
                f"{view}: agents {small:,} -> {large:,} (baseline: {tiny} -> {small}, per agent)",
                times[large][index] - times[small][index],
                "s",
                baseline=max(per_agent, 1e-9) * (large - small),
                target="<= 2x",
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[100, 300, 1000])
    args = parser.parse_args()
    print(f"{'agents':>7} {'html s':>8} {'show s':>8} {'html ms/agent':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for agents in args.agents:
            html, show = time_views(saved_run(agents, Path(tmp)))
            print(f"{agents:>7} {html:>8.2f} {show:>8.2f} {html / agents * 1000:>14.2f}")


if __name__ == "__main__":
    main()
