"""Script files: YAML and JSON load, and bad files fail naming file, field and value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_servers.anthropic import ModelScript, RateLimit, StreamCut
from harness.errors import ScriptError

GOOD = """\
default_agent: parent
models: [claude-sonnet-4-6]
agents:
  parent:
    turns:
      - text: Checking.
        tool_use: [{name: mem_ssh, input: {host: a}}]
      - when: {tool_result_for: mem_ssh}
        text: "Saw {tool_results}"
        fail: {kind: rate_limit, retry_after: 2}
  sub:
    repeat: true
    turns:
      - text: sub answer
        fail: [{kind: stream_cut, after_events: 4}]
"""


def test_yaml_and_json_scripts_load_to_the_same_model(tmp_path: Path) -> None:
    yaml_file = tmp_path / "script.yaml"
    yaml_file.write_text(GOOD)
    loaded = ModelScript.load(yaml_file)
    json_file = tmp_path / "script.json"
    json_file.write_text(json.dumps(loaded.model_dump(mode="json")))
    assert ModelScript.load(json_file) == loaded
    parent = loaded.agents["parent"]
    assert parent.turns[1].fail == [RateLimit(retry_after=2)]
    assert loaded.agents["sub"].turns[0].fail == [StreamCut(after_events=4)]
    assert loaded.fallback_agent == "parent"


@pytest.mark.parametrize(
    ("text", "field", "value", "fragment", "line"),
    [
        (
            "agents:\n  parent:\n    turns:\n      - text: a\n      - text: b\n"
            "      - tool_use: [{name: t, input: 5}]\n",
            "agents.parent.turns.2.tool_use.0.input",
            5,
            "Input should be a valid dictionary",
            6,
        ),
        (
            "agents:\n  a:\n    turns:\n      - text: a\n        fail: [{kind: meteor}]\n",
            "agents.a.turns.0.fail.0",
            None,  # a mapping is not echoed: the field and line point at it
            "does not match any of the expected tags",
            5,
        ),
        (
            "agents:\n  a:\n    turns:\n      - text: a\n"
            "        fail: [{kind: rate_limit, retry_after: -1}]\n",
            "agents.a.turns.0.fail.0.retry_after",
            -1,
            "greater than or equal to 0",
            5,
        ),
        (
            "agents:\n  a:\n    turns:\n      - when: {matches: '('}\n        text: a\n",
            "agents.a.turns.0.when.matches",
            "(",
            "not a valid regular expression",
            4,
        ),
        (
            "agents:\n  a:\n    turns:\n      - stop_reason: end_turn\n",
            "agents.a.turns.0",
            None,
            "a turn needs 'text' or 'tool_use'",
            4,
        ),
        (
            "agents:\n  a:\n    turns:\n      - text: a\n        colour: red\n",
            "agents.a.turns.0.colour",
            "red",
            "Extra inputs are not permitted",
            5,
        ),
        ("agents: {}\n", "agents", None, "at least 1 item", 1),
        (
            "default_agent: ghost\nagents:\n  a:\n    turns: [{text: a}]\n",
            "",
            None,
            "default_agent 'ghost' is not one of the agents (a)",
            None,
        ),
    ],
)
def test_bad_script_names_file_field_and_value(
    tmp_path: Path, text: str, field: str, value: object, fragment: str, line: int | None
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScriptError) as caught:
        ModelScript.load(path)
    error = caught.value
    assert error.path == str(path)
    assert (error.field or "") == field
    assert error.line == line
    assert fragment in error.message
    if value is not None:
        assert error.value == value
    else:
        assert "(got " not in str(error)
    assert str(path) in str(error)
    assert error.exit_code == 2


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("agents:\n  a:\n    turns: [\n")
    with pytest.raises(ScriptError) as caught:
        ModelScript.load(path)
    assert caught.value.path == str(path)
    assert caught.value.line == 4
    assert caught.value.message.startswith("not valid YAML: ")


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="cannot read the script"):
        ModelScript.load(tmp_path / "absent.yaml")
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ScriptError, match="a script must be a mapping with 'agents'"):
        ModelScript.load(path)
