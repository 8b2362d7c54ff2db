"""Distributions in scenario files: syntax, located errors, deterministic draws, resolution."""

from __future__ import annotations

import pytest

from harness.chaos_random import ChaosRandom
from harness.errors import ScenarioError
from harness.scenarios import Scenario, parse_scenario
from harness.scenarios.distributions import (
    REMOVED,
    DistributionError,
    draw,
    extract,
    parse_spec,
    resolve_data,
)

BASE = """\
name: randomized
description: A randomized scenario.
runtime:
  prompt: Check web1.
oracles: [agents_completed]
expect: {{buggy: [agents_completed], reproduces: sometimes}}
servers:
  ssh:
    fake: ssh
    timeout: {timeout}
    script:
      tools:
        mem_ssh:
          default: {{latency: {latency}, result: {{text: ok}}}}
model:
  agents:
    main:
      turns:
        - tool_use: [{{name: mem_ssh, input: {{host: web1, command: {{choice: [a]}}}}}}]
          fail: [{{chance: 0.5, then: {{kind: rate_limit, retry_after: 2}}}}]
        - text: done
"""

LATENCY = "/servers/ssh/script/tools/mem_ssh/default/latency"
FAULT = "/model/agents/main/turns/0/fail/0"


def _scenario(latency: str = "{uniform: [100, 200]}", timeout: str = "150") -> Scenario:
    return parse_scenario(BASE.format(latency=latency, timeout=timeout), path="s.yaml")


@pytest.mark.parametrize(
    ("spec", "low"),
    [
        ({"uniform": [1, 2]}, 1),
        ({"randint": [3, 9]}, 3),
        ({"normal": {"mu": 5, "sigma": 1}}, 5),
        ({"normal": {"mu": 5, "sigma": 1, "min": 2}}, 2),
        ({"lognormal": {"mu": 0, "sigma": 1}}, 1.0),
        ({"pareto": {"alpha": 2, "scale": 10}}, 10),
        ({"choice": ["x", "y"], "weights": [1, 3]}, "x"),
        ({"chance": 0.3, "then": {"kind": "overloaded"}}, {"kind": "overloaded"}),
    ],
)
def test_each_kind_parses_and_has_a_lower_end(spec: dict[str, object], low: object) -> None:
    parsed = parse_spec(spec)
    assert parsed.low == low
    assert parse_spec(parsed.to_json()) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"uniform": [2, 1]}, "low 2 is above high 1"),
        ({"uniform": [1]}, "[low, high]"),
        ({"randint": [1.5, 3]}, "two integers"),
        ({"normal": {"mu": 1}}, "needs 'sigma'"),
        ({"normal": {"mu": 1, "sigma": 1, "mean": 2}}, "unknown normal parameter 'mean'"),
        ({"pareto": {"alpha": 0}}, "must be positive"),
        ({"choice": []}, "non-empty list"),
        ({"choice": [1, 2], "weights": [1]}, "one non-negative number per choice"),
        ({"chance": 1.5, "then": 1}, "between 0 and 1"),
        ({"chance": 0.5}, "needs 'then'"),
        ({"chance": 0.5, "then": {"uniform": [1, 2]}}, "do not nest"),
        ({"uniform": [1, 2], "choice": [1]}, "one distribution per value"),
        ({"uniform": [1, 2], "seed": 3}, "unexpected key 'seed'"),
        ({"randint": [1, 10**400]}, "too large"),
        ({"uniform": [0, 2e12]}, "too large"),
        ({"normal": {"mu": -2e12, "sigma": 1}}, "too large"),
        ({"uniform": [float("nan"), 1]}, "not a number"),
        ({"lognormal": {"mu": 1e6, "sigma": 1}}, "overflow"),
        ({"lognormal": {"mu": 10, "sigma": 70}}, "overflow"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: dict[str, object], message: str) -> None:
    with pytest.raises(DistributionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_spec(spec)


def test_a_bad_distribution_in_a_file_names_file_line_and_field() -> None:
    with pytest.raises(ScenarioError) as info:
        _scenario(latency="{uniform: [300, 200]}")
    error = info.value
    assert error.path == "s.yaml"
    assert error.line == 14
    assert error.field == "servers.ssh.script.tools.mem_ssh.default.latency.uniform"
    assert "above high" in error.message


def test_nominal_values_must_fit_the_scripts() -> None:
    with pytest.raises(ScenarioError) as info:
        _scenario(latency="{uniform: [-5, 200]}")
    assert info.value.field is not None
    assert "latency" in info.value.field


def test_tool_input_is_data_not_a_distribution() -> None:
    scenario = _scenario()
    assert set(scenario.distributions) == {LATENCY, FAULT}
    turn = scenario.model["agents"]["main"]["turns"][0]
    assert turn["tool_use"][0]["input"]["command"] == {"choice": ["a"]}


def test_same_seed_same_draws_and_each_draw_depends_only_on_its_place() -> None:
    scenario = _scenario()
    first = scenario.resolve(7)[1]
    assert scenario.resolve(7)[1] == first
    assert len({scenario.resolve(s)[1][LATENCY] for s in range(20)}) == 20
    # A new distribution elsewhere does not shift the existing ones.
    other = _scenario(timeout="{uniform: [100, 200]}")
    assert other.resolve(7)[1][LATENCY] == first[LATENCY]
    assert all(100 <= scenario.resolve(s)[1][LATENCY] <= 200 for s in range(50))


def test_resolution_gives_plain_values_and_applies_chance_and_overrides() -> None:
    scenario = _scenario()
    resolved, draws = scenario.resolve(3, overrides={FAULT: False, LATENCY: 123.0})
    assert resolved.distributions == {}
    assert draws == {LATENCY: 123.0, FAULT: False}
    script = resolved.servers["ssh"].script
    assert isinstance(script, dict)
    # A tool's latency stays a distribution (drawn per call); the draw is its first call's.
    assert script["tools"]["mem_ssh"]["default"]["latency"] == {
        "uniform": [100, 200],
        "first": 123.0,
    }
    assert resolved.model["agents"]["main"]["turns"][0]["fail"] == []
    with_fault, _ = scenario.resolve(3, overrides={FAULT: True})
    assert with_fault.model["agents"]["main"]["turns"][0]["fail"] == [
        {"kind": "rate_limit", "retry_after": 2}
    ]


def test_chance_draws_follow_the_probability() -> None:
    spec = parse_spec({"chance": 0.25, "then": 1})
    taken = sum(draw(spec, ChaosRandom(s)) for s in range(2000))
    assert 400 < taken < 600


def test_removal_of_several_list_items_keeps_the_rest_in_order() -> None:
    data = {"model": {"fail": [{"chance": 0, "then": "a"}, "b", {"chance": 0, "then": "c"}, "d"]}}
    nominal, specs = extract(data)
    assert nominal["model"]["fail"] == ["a", "b", "c", "d"]
    out, draws = resolve_data(nominal, specs, seed=1)
    assert out["model"]["fail"] == ["b", "d"]
    assert set(draws.values()) == {False}
    assert REMOVED is not None


def test_dump_and_validate_round_trip_keeps_the_distributions() -> None:
    scenario = _scenario()
    again = Scenario.model_validate(scenario.model_dump(mode="json"))
    assert again.distributions == scenario.distributions
    assert again.content_hash() == scenario.content_hash()
    assert again.resolve(5)[1] == scenario.resolve(5)[1]


def test_drawn_values_that_do_not_fit_are_a_scenario_error() -> None:
    # A normal without ``min`` can draw a negative latency.
    scenario = _scenario(latency="{normal: {mu: 0, sigma: 50}}")
    with pytest.raises(ScenarioError, match="drew values that do not fit") as info:
        scenario.resolve(0, overrides={LATENCY: -1.0})
    assert info.value.field is not None


def test_drawn_values_that_do_not_fit_name_the_file_and_line() -> None:
    # Which file of a many-file run drew them: the error stops the whole run.
    scenario = _scenario(latency="{normal: {mu: 0, sigma: 50}}")
    with pytest.raises(ScenarioError) as info:
        scenario.resolve(0, overrides={LATENCY: -1.0})
    assert (info.value.path, info.value.line) == ("s.yaml", 14), str(info.value)


def test_a_pointer_to_nowhere_is_a_scenario_error() -> None:
    data = _scenario().model_dump(mode="json")
    data["distributions"]["/model/agents/main/turns/7/latency"] = {"uniform": [1, 2]}
    scenario = Scenario.model_validate(data)
    with pytest.raises(ScenarioError, match="points to no value") as info:
        scenario.resolve(0)
    assert info.value.field == "model.agents.main.turns.7.latency"


def test_a_heavy_tail_that_leaves_float_range_draws_infinity_or_its_max() -> None:
    # alpha 1e-4: (1 - u) ** 10000 underflows to 0 for most u, and 1 / 0 must not escape.
    unbounded = parse_spec({"pareto": {"alpha": 1e-4}})
    bounded = parse_spec({"pareto": {"alpha": 1e-4, "max": 300}})
    rng = ChaosRandom(1)
    unbounded_draws = [draw(unbounded, rng.fork(str(i))) for i in range(20)]
    bounded_draws = [draw(bounded, rng.fork(str(i))) for i in range(20)]
    assert float("inf") in unbounded_draws
    assert all(1 <= d <= 300 for d in bounded_draws)
    assert bounded_draws.count(300) >= unbounded_draws.count(float("inf"))


PER_CALL = """\
name: per-call
description: Three calls of one tool, each with its own latency.
runtime:
  prompt: Check.
oracles: [agents_completed]
expect: {buggy: [agents_completed], reproduces: sometimes}
servers:
  ssh:
    fake: ssh
    transport: TRANSPORT
    script: {tools: {mem_ssh: {default: {latency: LATENCY, result: {text: ok}}}}}
model:
  agents:
    main:
      turns:
        - tool_use: [{name: mem_ssh, input: {host: a, command: x}}]
        - tool_use: [{name: mem_ssh, input: {host: b, command: x}}]
        - tool_use: [{name: mem_ssh, input: {host: c, command: x}}]
        - text: done
"""


def _durations(latency: str, seed: int, transport: str = "memory") -> tuple[list[float], dict]:
    from harness.scenarios import run_scenario

    text = PER_CALL.replace("LATENCY", latency).replace("TRANSPORT", transport)
    outcome = run_scenario(parse_scenario(text), policy="fixed", seed=seed)
    finished = [e for e in outcome.record.server_events["ssh"] if e["kind"] == "finished"]
    calls = [e for e in finished if e.get("method") == "tools/call"]
    return [round(e["duration"], 6) for e in calls], outcome.draws


@pytest.mark.parametrize("transport", ["memory", "stdio"])
def test_a_tools_latency_is_drawn_per_call_and_the_first_is_the_runs_draw(transport: str) -> None:
    durations, draws = _durations("{uniform: [10, 20]}", seed=5, transport=transport)
    assert len(set(durations)) == 3
    assert all(10 <= d <= 20 for d in durations)
    assert durations[0] == round(draws[LATENCY], 6)
    assert _durations("{uniform: [10, 20]}", seed=5, transport=transport)[0] == durations


def test_draw_per_run_gives_every_call_the_runs_one_draw() -> None:
    durations, draws = _durations("{uniform: [10, 20], draw: per_run}", seed=5)
    assert durations == [round(draws[LATENCY], 6)] * 3
