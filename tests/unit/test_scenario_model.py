"""Scenario files: bad input fails at load naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenarios import POLICY_MAP, load_scenario, parse_scenario, resolve

GOOD = """\
name: tiny
description: One agent, one answer.
runtime:
  prompt: hi
model:
  agents:
    main:
      turns:
        - text: hello
oracles: [agents_completed]
expect:
  buggy: [agents_completed]
"""


def _error(text: str, tmp_path: Path) -> ScenarioError:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value


def test_a_minimal_scenario_loads_and_maps_policies() -> None:
    scenario = parse_scenario(GOOD)
    assert scenario.name == "tiny"
    for policy, expected in POLICY_MAP.items():
        config = scenario.runtime_config(policy)  # type: ignore[arg-type]
        assert config.policies.model_dump() == expected


def test_policy_override_changes_one_policy_only() -> None:
    scenario = parse_scenario(GOOD + "policies:\n  buggy: {scope: explicit}\n")
    config = scenario.runtime_config("buggy")
    assert config.policies.scope == "explicit"
    assert config.policies.reconnect == "naive"


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("name: [unclosed\n", 2, None, "not valid YAML"),
        (GOOD.replace("name: tiny", "name: Tiny Scenario"), 1, "name", "String should match"),
        (
            GOOD.replace("oracles: [agents_completed]", "oracles: [no_such_oracle]"),
            None,
            None,
            "unknown oracle",
        ),
        (GOOD + "budget: {virtual: -5}\n", 13, "budget.virtual", "greater than 0"),
        (
            GOOD.replace("- text: hello", "- text: hello\n          latency: soon"),
            10,
            "model.agents.main.turns.0.latency",
            "valid number",
        ),
        (GOOD + "servers:\n  ssh: {fake: telnet}\n", None, "servers", "unknown fake server"),
        (
            GOOD + "servers:\n  ssh:\n    fake: ssh\n    script: {tools: {nope: {}}}\n",
            None,
            None,
            "nope",
        ),
        (
            GOOD.replace("  buggy: [agents_completed]", "  buggy: [tool_pairing_valid]"),
            None,
            None,
            "not listed in oracles",
        ),
        ("- just\n- a list\n", None, None, "must be a YAML mapping"),
    ],
)
def test_bad_scenarios_name_line_and_field(
    tmp_path: Path, text: str, line: int | None, field: str | None, message: str
) -> None:
    error = _error(text, tmp_path)
    rendered = str(error)
    assert str(tmp_path / "s.yaml") in rendered
    assert message in rendered
    if line is not None:
        assert error.line == line, rendered
    if field is not None:
        assert error.field == field, rendered


def test_unknown_builtin_lists_the_available_ones() -> None:
    with pytest.raises(ScenarioError, match=r"built-in scenarios: .*cascade"):
        resolve("no_such_scenario")


def test_scheduled_task_past_the_budget_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace(
        "runtime:\n  prompt: hi\n",
        "runtime:\n  prompt: hi\n  scheduled:\n    - {name: t, at: 99999, agent: main, "
        "context_id: Blog, prompt: go}\n",
    )
    error = _error(text + "budget: {virtual: 100}\n", tmp_path)
    assert "past the virtual budget" in str(error)
