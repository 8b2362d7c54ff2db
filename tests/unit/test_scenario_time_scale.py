"""A scenario sets its own live time scale (budget.time_scale); the flag overrides it, and a
scale at which the schedule cannot fit the wall budget is refused before anything starts."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError, ScenarioError
from harness.scenarios import resolve
from harness.scenarios.live import run_scenario_live
from harness.scenarios.model import Scenario, parse_scenario


def with_scale(name: str, scale: float) -> Scenario:
    scenario, _ = resolve(name)
    budget = scenario.budget.model_copy(update={"time_scale": scale})
    return scenario.model_copy(update={"budget": budget})


def test_a_scenario_scale_that_misses_the_schedule_is_refused_naming_the_field() -> None:
    # scope_leak's task fires at 46800 s; at scale 1 that is thirteen real hours.
    with pytest.raises(ConfigError) as caught:
        run_scenario_live(with_scale("scope_leak", 1.0), policy="fixed")
    assert caught.value.field == "budget.time_scale"
    assert "use budget.time_scale 0.00032 or less" in caught.value.message


def test_the_flag_overrides_the_scenario_scale() -> None:
    with pytest.raises(ConfigError) as caught:
        run_scenario_live(with_scale("scope_leak", 0.0001), policy="fixed", time_scale=0.5)
    assert caught.value.field == "--time-scale"


def test_the_scale_is_bounded_at_load() -> None:
    text = """
name: t
description: d
model: {agents: {main: {turns: [{text: hi}]}}}
runtime: {prompt: go}
budget: {time_scale: 0}
oracles: [tasks_answered]
expect: {buggy: [tasks_answered]}
"""
    with pytest.raises(ScenarioError, match=r"budget\.time_scale"):
        parse_scenario(text)
    assert parse_scenario(text.replace("0}", "0.05}")).budget.time_scale == 0.05
