"""One way to point at a bad field: scenarios, model scripts and tool scripts name the same
line and spell the field the same (``a.0.b``), and a comma that split a value says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_servers.anthropic import ModelScript
from fake_servers.mcp import ServerScript
from harness._yaml import line_of, parse_yaml
from harness.errors import ConfigError, FaultConfigError, ScenarioError, ScriptError
from harness.scenarios import load_scenario

SCENARIO = """\
name: tiny
runtime:
  prompt: hi
model:
{model}
oracles: [agents_completed]
"""

MODEL = """\
agents:
  main:
    turns:
      - text: hello
      - {text: hello, world}
"""


def _indent(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


def _raised(kind: type[ConfigError], load: object, path: Path) -> ConfigError:
    with pytest.raises(kind) as caught:
        load(path)  # type: ignore[operator]
    return caught.value


def test_a_model_script_error_reads_the_same_alone_and_inside_a_scenario(tmp_path: Path) -> None:
    alone = tmp_path / "script.yaml"
    alone.write_text(MODEL)
    inside = tmp_path / "scenario.yaml"
    inside.write_text(SCENARIO.format(model=_indent(MODEL).rstrip("\n")))

    script = _raised(ScriptError, ModelScript.load, alone)
    scenario = _raised(ScenarioError, load_scenario, inside)

    assert script.field == "agents.main.turns.1.world"
    assert scenario.field == "model.agents.main.turns.1.world"
    assert script.line == 5
    assert scenario.line == 9  # four lines of scenario above the script
    for error in (script, scenario):
        assert error.message == (
            "Extra inputs are not permitted "
            '(a comma ends a value inside {...}: quote it, text: "hello, world")'
        )


def test_a_tool_script_spells_fields_the_same_and_hints_without_echoing(tmp_path: Path) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text("tools:\n  search:\n    calls:\n      2: {result: {text: a, b, c}}\n")

    error = _raised(ScriptError, ServerScript.load, path)

    assert error.field == "tools.search.calls.2.result.b"
    assert error.line == 4
    # A file's values stay out of the message (the path may name any file): the hint says
    # which value to quote, not what it holds.
    assert error.message == (
        "tool 'search': Extra inputs are not permitted "
        "(a comma ends a value inside {...}: quote the value of 'text')"
    )
    assert "(got" not in str(error)


@pytest.mark.parametrize(
    "text",
    [
        "agents:\n  main:\n    turns:\n      - {text: hello, colour: red}\n",
        "agents:\n  main:\n    turns:\n      - text: hello, world\n        colour: red\n",
    ],
)
def test_an_extra_key_that_is_no_comma_leftover_gets_no_hint(tmp_path: Path, text: str) -> None:
    path = tmp_path / "script.yaml"
    path.write_text(text)
    error = _raised(ScriptError, ModelScript.load, path)
    assert error.message == "Extra inputs are not permitted"
    assert error.field == "agents.main.turns.0.colour"


def test_line_of_points_at_the_key_that_names_the_field() -> None:
    text = "a:\n  b:\n    - x\n    - c:\n        d: 1\n"
    assert line_of(text, ("a", "b")) == 2  # the key, not the first line of its value
    assert line_of(text, ("a", "b", 1)) == 4
    assert line_of(text, ("a", "b", "1", "c", "d")) == 5
    assert line_of(text, ("a", "b", 7)) == 2  # past the end: the deepest entry found
    assert line_of(text, ("z",)) is None
    assert line_of("a: [", ("a",)) is None
    assert line_of(None, ("a",)) is None


def test_a_colon_inside_a_plain_value_says_to_quote_it(tmp_path: Path) -> None:
    path = tmp_path / "colon.yaml"
    path.write_text(
        "name: tiny\nruntime:\n  prompt: Check disk: web1\noracles: [agents_completed]\n"
    )
    error = _raised(ScenarioError, load_scenario, path)
    assert "colon.yaml:3" in str(error)
    assert "quote the value" in str(error)


def test_an_unquoted_placeholder_says_to_quote_it(tmp_path: Path) -> None:
    path = tmp_path / "brace.yaml"
    path.write_text(
        SCENARIO.format(
            model=_indent(MODEL.replace("{text: hello, world}", "text: {tool_results}"))
        )
    )
    error = _raised(ScenarioError, load_scenario, path)
    assert "field 'model.agents.main.turns.1.text'" in str(error)
    assert 'quote it, "{tool_results}"' in str(error)


WHOLE = """\
name: tiny
description: One answer.
runtime: {prompt: hi}
model: {agents: {main: {turns: [{text: hello}]}}}
oracles: [agents_completed]
expect: {buggy: [agents_completed]}
"""


@pytest.mark.parametrize(
    ("written", "hint"),
    [("off", 'YAML reads off as false: quote it, "off"'), ("yes", "YAML reads yes as true")],
)
def test_a_word_yaml_reads_as_a_boolean_says_to_quote_it(
    tmp_path: Path, written: str, hint: str
) -> None:
    path = tmp_path / "bool.yaml"
    path.write_text(WHOLE + f"policies:\n  buggy: {{history_checks: {written}}}\n")
    error = _raised(ScenarioError, load_scenario, path)
    assert "field 'policies.buggy.history_checks'" in str(error)
    assert hint in str(error)


@pytest.mark.parametrize("written", ["true", '"no"'])
def test_a_boolean_written_as_one_or_a_quoted_word_gets_no_boolean_hint(
    tmp_path: Path, written: str
) -> None:
    path = tmp_path / "bool.yaml"
    path.write_text(WHOLE + f"policies:\n  buggy: {{history_checks: {written}}}\n")
    error = _raised(ScenarioError, load_scenario, path)
    assert "field 'policies.buggy.history_checks'" in str(error)
    assert "YAML reads" not in str(error)


def _proxy_config(path: Path) -> object:
    from harness.faults.cli import load_proxy_config

    return load_proxy_config(path)


def _chat_fixture(path: Path) -> object:
    from fake_servers.mcp.chat import ChatFixture

    return ChatFixture.load(path)


def _runtime_config(path: Path) -> object:
    from harness.runtime.config import load_runtime_config

    return load_runtime_config(path)


def _fault_plan(path: Path) -> object:
    from harness.faults.plan import FaultPlan

    return FaultPlan.load(path)


# Every loader of a hand-written file, and the error it raises.
LOADERS = {
    "scenario": (ScenarioError, load_scenario),
    "fault plan": (FaultConfigError, _fault_plan),
    "model script": (ScriptError, ModelScript.load),
    "tool script": (ScriptError, ServerScript.load),
    "chat fixture": (ConfigError, _chat_fixture),
    "runtime config": (ConfigError, _runtime_config),
    "proxy config": (ConfigError, _proxy_config),
}

# A file that does not parse: where every loader says it fails, and a part of the problem.
SYNTAX_ERRORS = [
    (
        "bad.yaml",
        "a:\n  b: 1\n c: 2\n",
        "3:2: not valid YAML: ",
        "(while parsing a block mapping at line 1, column 1)",
    ),
    (
        "bad.yaml",
        'a: 1\nb: "unclosed\n\nc: 2\n',
        "5:1: not valid YAML: ",
        "(while scanning a quoted scalar at line 2, column 4)",
    ),
    ("bad.yaml", "a:\n\tb: 1\n", "2:1: not valid YAML: ", "(a tab: YAML indents with spaces)"),
    ("bad.yaml", "a: b: c\n", "1:5: not valid YAML: ", "mapping values are not allowed"),
    ("bad.json", '{"a": 1,\n "b": }\n', "2:7: not valid JSON: ", "Expecting value"),
    ("bad.json", '{"a": 1, "a": 2}', " not valid JSON: ", "duplicate key 'a'"),
]


@pytest.mark.parametrize("loader", list(LOADERS))
@pytest.mark.parametrize(("name", "text", "where", "problem"), SYNTAX_ERRORS)
def test_every_loader_words_a_syntax_error_the_same(
    tmp_path: Path, loader: str, name: str, text: str, where: str, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    kind, load = LOADERS[loader]
    error = _raised(kind, load, path)
    assert type(error) is kind
    with pytest.raises(ConfigError) as reference:
        parse_yaml(text, path=path, error=ConfigError)
    assert str(error) == str(reference.value)
    assert str(error).startswith(f"{path}:{where}"), str(error)
    assert problem in error.message


@pytest.mark.parametrize(
    ("load", "text", "field"),
    [
        (
            load_scenario,
            "name: tiny\ndescription: d\nruntime: {prompt: hi}\n"
            "model: {agents: {main: {turns: [{text: hi}]}}}\n"
            "oracles: [answer_contains: {regex: '('}]\nexpect: {buggy: [answer_contains]}\n",
            "oracles.0.answer_contains.regex",
        ),
        (
            ModelScript.load,
            "agents:\n  main:\n    turns:\n      - {when: {matches: '('}, text: hi}\n",
            "agents.main.turns.0.when.matches",
        ),
        (
            ServerScript.load,
            "tools:\n  t:\n    match:\n      - {args: {a: {regex: '('}}, then: {}}\n",
            "tools.t.match.0.args.a.regex",
        ),
    ],
)
def test_a_regex_that_does_not_compile_reads_the_same_everywhere(
    tmp_path: Path, load: object, text: str, field: str
) -> None:
    path = tmp_path / "file.yaml"
    path.write_text(text)
    error = _raised(ConfigError, load, path)
    assert error.field == field
    assert "not a valid regular expression: missing ), unterminated subpattern" in error.message
