"""Benchmark: what driving a runtime through the adapter protocol costs in sim mode.

Run ``python -m benchmarks.adapter``. Side by side in one run, the same cascade work in sim
mode (``examples/minimal_agent/cascade.yaml``: one turn with two parallel ``mem_ssh`` calls on
one in-memory server, host ``a`` outlasting a 3 s MCP timeout while ``b`` answers in 1 s, then
the final turn), each side a whole ``run_scenario`` (rig, run, black- or white-box judgement):

- adapter: the minimal agent, a runtime the harness did not write, through ``runtime.adapter``
  (its factory, ``RuntimeContext``, in-memory ``ServerParams``, the sim-mode real-world audit);
- reference: the same scenario with the adapter taken out, so the reference runtime does the
  work (the server's call timeout set to the adapter's 3 s).

Both under the fixed policy. Each round runs every side once in a rotating order; the ratio
is the median of the per-round ratios. Target: adapter <= 1.5x.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks._alternate import alternate, compared
from benchmarks._figures import Figure
from harness.scenarios import Scenario, load_scenario, parse_scenario, run_scenario

TARGET = "<= 1.5x"
SCENARIO = Path(__file__).resolve().parents[1] / "examples" / "minimal_agent" / "cascade.yaml"
SIDES = ("adapter", "reference")


def scenarios() -> dict[str, Scenario]:
    """The adapter scenario and its reference-runtime twin (same servers, model and prompt)."""
    adapter = load_scenario(SCENARIO)
    data: dict[str, Any] = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    timeout = data["runtime"]["options"]["mcp_timeout"]
    for key in ("adapter", "options"):
        data["runtime"].pop(key)
    data.pop("policies", None)
    data["name"] = f"{data['name']}_reference"
    data["servers"]["ssh"]["timeout"] = timeout
    return {"adapter": adapter, "reference": parse_scenario(yaml.safe_dump(data))}


def _timed(scenario: Scenario) -> float:
    started = time.perf_counter()
    outcome = run_scenario(scenario, policy="fixed", seed=0)
    elapsed = time.perf_counter() - started
    if outcome.outcome != "held":
        raise RuntimeError(f"{scenario.name} under fixed was {outcome.outcome}, not held")
    return elapsed


def measure(rounds: int) -> dict[str, list[float]]:
    runs = scenarios()
    return alternate({side: lambda s=runs[side]: _timed(s) for side in SIDES}, rounds)


def figures(*, quick: bool = False) -> list[Figure]:
    """The adapter-driven sim run of the cascade against the reference runtime's."""
    samples = measure(rounds=7 if quick else 21)
    return [
        compared(
            "sim cascade run: minimal agent via adapter vs reference runtime",
            samples,
            "adapter",
            "reference",
            "ms",
            scale=1e3,
            target=TARGET,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="timed rounds (default 21)")
    args = parser.parse_args()
    samples = measure(args.rounds)
    row = compared("adapter vs reference", samples, "adapter", "reference", "ms", scale=1e3)
    print(
        f"adapter {row['value']:.1f} ms  reference {row['baseline']:.1f} ms  "
        f"ratio {row['ratio']:.3f} (target {TARGET}; median of {args.rounds} per-round ratios)"
    )


if __name__ == "__main__":
    main()
