"""Run one scenario in sim mode: the reference runtime (``runner``) or the runtime under
test the scenario names (``user_runtime``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.errors import ScenarioError
from harness.scenarios.model import Policy, Scenario
from harness.scenarios.runner import RunOutcome, run_reference
from harness.scenarios.user_runtime import run_user_sim

__all__ = ["run_scenario"]


def run_scenario(
    scenario: Scenario,
    *,
    policy: Policy,
    seed: int = 0,
    strategy: str = "fifo",
    strategy_params: dict[str, Any] | None = None,
    source: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RunOutcome:
    """Run ``scenario`` under ``policy`` in sim mode and judge it with its oracles."""
    if "sim" not in scenario.modes:
        raise ScenarioError(
            f"{scenario.name} runs in live mode only (modes: {', '.join(scenario.modes)}): "
            "run it with --mode live",
            field="modes",
        )
    scenario, draws = scenario.resolve(seed, overrides=dict(overrides) if overrides else None)
    run = run_reference if scenario.runtime.under_test == "reference" else run_user_sim
    return run(
        scenario,
        policy=policy,
        seed=seed,
        strategy=strategy,
        strategy_params=strategy_params,
        source=source,
        draws=draws,
    )
