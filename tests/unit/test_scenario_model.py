"""Scenario files: bad input fails at load naming file, line and field."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from harness.errors import ScenarioError
from harness.runtime.config import COMPACTION_PRESETS, RECONNECT_PRESETS
from harness.scenarios import POLICY_MAP, builtin_names, load_scenario, parse_scenario, resolve
from harness.scenarios.cli import schema_cmd
from harness.scenarios.registry import BUILTIN_DIR

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
        dumped = config.policies.model_dump()
        assert {k: dumped[k] for k in expected} == expected
        # The reconnect preset expands to its knobs.
        assert {k: dumped[k] for k in RECONNECT_PRESETS[expected["reconnect"]]} == (
            RECONNECT_PRESETS[expected["reconnect"]]
        )


def test_an_explicit_connection_knob_wins_over_the_reconnect_preset() -> None:
    scenario = parse_scenario(GOOD + "policies:\n  buggy: {reconnect_when: when_idle}\n")
    policies = scenario.runtime_config("buggy").policies
    assert (policies.reconnect, policies.reconnect_when) == ("naive", "when_idle")
    assert (policies.reconnect_coordination, policies.call_retries) == ("none", 0)


def test_the_compaction_preset_expands_to_its_knobs() -> None:
    for policy, expected in POLICY_MAP.items():
        scenario = parse_scenario(GOOD)
        dumped = scenario.runtime_config(policy).policies.model_dump()  # type: ignore[arg-type]
        preset = COMPACTION_PRESETS[expected["compaction"]]
        assert {k: dumped[k] for k in preset} == preset


def test_the_scope_preset_expands_to_its_knob() -> None:
    scenario = parse_scenario(GOOD)
    assert scenario.runtime_config("buggy").policies.default_query_scope == "thread"
    assert scenario.runtime_config("fixed").policies.default_query_scope == "declared"


def test_policy_override_changes_one_policy_only() -> None:
    scenario = parse_scenario(GOOD + "policies:\n  buggy: {scope: explicit}\n")
    config = scenario.runtime_config("buggy")
    assert config.policies.default_query_scope == "declared"
    assert config.policies.reconnect == "naive"


SERVED = (
    GOOD
    + """servers:
  index:
    fake: declared
    timeout: 30
    script:
      tools:
        lookup: {default: {latency: 1, result: {text: found}}}
"""
)


@pytest.mark.parametrize(
    ("runtime", "extra", "line", "field", "message"),
    [
        (
            "  approvals: {tools: [lookup, lokup]}\n",
            "",
            5,
            "runtime.approvals.tools.1",
            "server 'index' has no tool 'lokup'; did you mean 'lookup'? tools: lookup",
        ),
        (
            "  approvals: {tools: [lookup], after: 4000}\n",
            "budget: {virtual: 3600}\n",
            5,
            "runtime.approvals.after",
            "answers 4000 s after a run parks, past the virtual budget (3600 s)",
        ),
        (
            "",
            "faults:\n  - {type: cancel, target: index, match: {tool: lokup}}\n",
            21,
            "faults.0.match.tool",
            "fault cancel_0: server 'index' has no tool 'lokup'",
        ),
        (
            "",
            "    tool_timeouts: {lookup: 5, lookp: 1}\n",
            20,
            "servers.index.tool_timeouts.lookp",
            "server 'index' has no tool 'lookp'; did you mean 'lookup'?",
        ),
        (
            "",
            "  ssh: {fake: ssh}\nfaults:\n  - {type: delay, seconds: 1, match: {tool: x}}\n",
            22,
            "faults.0.match.tool",
            "no server has a tool 'x'; tools: lookup, mem_ssh",
        ),
    ],
)
def test_approvals_timeouts_and_fault_matches_are_checked_at_load(
    tmp_path: Path, runtime: str, extra: str, line: int, field: str, message: str
) -> None:
    text = SERVED.replace("  prompt: hi\n", "  prompt: hi\n" + runtime) + extra
    error = _error(text, tmp_path)
    assert (error.line, error.field) == (line, field), str(error)
    assert message in str(error)


def test_tools_of_servers_known_only_at_run_time_and_the_runtimes_own_are_not_checked() -> None:
    approvals = "  approvals: {tools: [spawn_subagent, browse]}\n"
    scenario = parse_scenario(
        SERVED.replace("  prompt: hi\n", "  prompt: hi\n" + approvals)
        + "  web: {url: 'http://127.0.0.1:9/mcp'}\n"
        + "faults:\n  - {type: cancel, target: index, match: {tool: lookup}}\n"
        + "  - {type: cancel, match: {tool: browse}}\n"
    )
    assert scenario.runtime.approvals is not None


def test_a_policy_sets_a_servers_script_options_and_timeout_over_its_entry() -> None:
    scenario = parse_scenario(
        SERVED
        + "policies:\n"
        + "  buggy: {servers: {index: {script: {cancel_after_response: crash,"
        + " tools: {lookup: {default: {latency: 2}}}}, timeout: 5}}}\n"
    )
    buggy = scenario.runtime_config("buggy").servers["index"]
    fixed = scenario.runtime_config("fixed").servers["index"]
    assert isinstance(buggy.script, dict)
    assert isinstance(fixed.script, dict)
    assert buggy.script["cancel_after_response"] == "crash"
    # Mappings merge key by key: the result beside the overridden latency stays.
    assert buggy.script["tools"]["lookup"]["default"] == {"latency": 2, "result": {"text": "found"}}
    assert buggy.timeout == 5
    assert "cancel_after_response" not in fixed.script
    assert fixed.timeout == 30
    assert scenario.servers["index"].script == fixed.script  # the entry itself is unchanged


def test_a_policys_latency_distribution_replaces_the_entrys_whole() -> None:
    base = SERVED.replace("latency: 1,", "latency: {uniform: [60, 240]},")
    assert base != SERVED
    scenario = parse_scenario(
        base + "policies:\n  buggy: {servers: {index: {script: {tools: {lookup: "
        "{default: {latency: {lognormal: {mu: 0, sigma: 1}}}}}}}}}\n"
    )
    resolved, _ = scenario.resolve(0)
    script = resolved.runtime_config("buggy").servers["index"].script
    assert isinstance(script, dict)
    assert script["tools"]["lookup"]["default"]["latency"] == {"lognormal": {"mu": 0, "sigma": 1}}


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ("{nope: {timeout: 5}}", "policies.buggy.servers.nope", "names no server 'nope'"),
        (
            "{index: {script: {cancel_after_response: explode}}}",
            "policies.buggy.servers.index.script.cancel_after_response",
            "Input should be 'ignore' or 'crash'",
        ),
        (
            "{index: {script: {tools: {lookup: {default: {hang: true, result: {text: x}}}}}}}",
            "policies.buggy.servers.index.script.tools.lookup.default",
            "tool 'lookup': choose one of hang, crash, error, result",
        ),
    ],
)
def test_a_bad_per_policy_server_setting_names_its_field(
    tmp_path: Path, override: str, field: str, message: str
) -> None:
    error = _error(SERVED + f"policies:\n  buggy: {{servers: {override}}}\n", tmp_path)
    assert error.field == field, str(error)
    assert message in str(error)


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
        (GOOD + "servers:\n  ssh: {fake: telnet}\n", 14, "servers.ssh.fake", "unknown fake server"),
        (
            GOOD + "servers:\n  ssh:\n    fake: ssh\n    script:\n      tools: {nope: {}}\n",
            17,
            "servers.ssh.script.tools.nope",
            "server 'ssh' has no tool 'nope'",
        ),
        (
            GOOD.replace("  buggy: [agents_completed]", "  buggy:\n    - tool_pairing_valid"),
            13,
            "expect.buggy.0",
            "oracle 'tool_pairing_valid' is not listed in oracles (listed: agents_completed)",
        ),
        ("- just\n- a list\n", None, None, "must be a YAML mapping of its fields"),
        ("", None, None, "(name, description, ...); this holds nothing"),
        ("just words\n", None, None, "this holds plain text"),
        (
            GOOD.replace(
                "oracles: [agents_completed]", "oracles:\n- agents_completed\n- agents_completed"
            ),
            12,
            "oracles.1",
            "oracle 'agents_completed' listed twice",
        ),
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


@functools.cache
def _schema_validator() -> jsonschema.Draft202012Validator:
    """A validator of what ``harness schema`` prints."""
    printed = CliRunner().invoke(schema_cmd, [])
    assert printed.exit_code == 0, printed.output
    schema = json.loads(printed.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_scenario_validates_against_harness_schema(name: str) -> None:
    data = yaml.safe_load((BUILTIN_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in _schema_validator().iter_errors(data)
    ]
    assert errors == []


@pytest.mark.parametrize(
    "value", [{"uniform": [1]}, {"uniform": [1, 2], "then": 3}, "soon", {"chance": 2, "then": 1}]
)
def test_the_schema_refuses_what_the_loader_refuses(value: object) -> None:
    data = yaml.safe_load((BUILTIN_DIR / "scope_leak_random.yaml").read_text(encoding="utf-8"))
    data["runtime"]["scheduled"][0]["at"] = value
    assert list(_schema_validator().iter_errors(data))
    with pytest.raises(ScenarioError, match="at"):
        parse_scenario(yaml.safe_dump(data))


def test_the_shipped_schema_is_the_models_schema() -> None:
    from harness.scenarios.model import SCHEMA_FILE, json_schema

    shipped = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert shipped == json_schema(), (
        "harness/scenarios/schema.json is stale: regenerate it with "
        'python -c "from harness.scenarios.model import write_schema_file; write_schema_file()"'
    )


def test_an_unknown_parameter_of_a_self_reading_oracle_is_refused(tmp_path: Path) -> None:
    # tool_results_within reads its own parameters: a misspelt one ("tools") once passed
    # silently and the oracle judged every tool instead of the one meant.
    text = GOOD.replace(
        "oracles: [agents_completed]",
        "oracles:\n  - agents_completed\n  - tool_results_within: {seconds: 60, tools: exec}",
    )
    error = _error(text, tmp_path)
    assert "s.yaml:12" in str(error)
    assert "oracles.1.tool_results_within.tools" in str(error)
    assert "unknown parameter 'tools'; it takes seconds, tool" in str(error)
    data = yaml.safe_load(text)
    assert list(_schema_validator().iter_errors(data))
    data["oracles"][1]["tool_results_within"] = {"seconds": 60, "tool": "exec"}
    assert list(_schema_validator().iter_errors(data)) == []
    parse_scenario(yaml.safe_dump(data))


@pytest.mark.parametrize(
    "path", sorted((BUILTIN_DIR / "bugs").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_bug_file_validates_against_harness_schema_in_any_yaml_parser(path: Path) -> None:
    # The pure-Python parser, as an editor's or a machine without libyaml reads the file (a
    # plain '?}' in a flow mapping passes libyaml only); then the schema an editor checks by.
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in _schema_validator().iter_errors(data)
    ]
    assert errors == []


def test_every_knob_has_a_description_in_harness_schema() -> None:
    printed = json.loads(CliRunner().invoke(schema_cmd, []).output)
    knobs = printed["$defs"]["PolicyOverrides"]["properties"]
    assert [name for name, knob in knobs.items() if not knob.get("description")] == []


def test_a_misspelt_oracle_is_located_and_the_close_name_offered(tmp_path: Path) -> None:
    error = _error(
        GOOD.replace("oracles: [agents_completed]", "oracles: [agent_completed]"), tmp_path
    )
    assert "s.yaml:10, field 'oracles.0'" in str(error)
    assert "did you mean 'agents_completed'?" in str(error)


INLINE_CHAT = """\
name: inline-chat
description: The chat server's history is written in the scenario.
runtime:
  prompt: what was said?
servers:
  chat:
    fake: chat
    transport: {transport}
    chat_fixture:
      default_context: General
      contexts:
        General: [{{at: "2026-11-27T08:01:12Z", author: sam, text: "deploy train at nine"}}]
model:
  agents:
    main:
      turns:
        - tool_use: [{{name: chat_list_messages, input: {{}}}}]
        - text: "Heard: {{tool_results}}"
oracles:
  - answer_contains: {{text: deploy train at nine}}
expect:
  buggy: [answer_contains]
  fixed: hold
"""


@pytest.mark.parametrize("transport", ["memory", "stdio"])
def test_an_inline_chat_fixture_is_what_the_chat_server_serves(transport: str) -> None:
    from harness.scenarios.run import run_scenario

    scenario = parse_scenario(INLINE_CHAT.format(transport=transport))
    outcome = run_scenario(scenario, policy="fixed")
    assert outcome.met, outcome.verdicts


def test_a_bad_inline_chat_fixture_names_the_scenario_file_line_and_field(
    tmp_path: Path,
) -> None:
    text = INLINE_CHAT.format(transport="memory")
    bad_time = _error(text.replace('"2026-11-27T08:01:12Z"', "soon"), tmp_path)
    assert (bad_time.path, bad_time.line) == (str(tmp_path / "s.yaml"), 12)
    assert bad_time.field == "servers.chat.chat_fixture.contexts.General.0.at"
    unknown = _error(text.replace("default_context: General", "default_context: dev"), tmp_path)
    assert (unknown.line, unknown.field) == (10, "servers.chat.chat_fixture.default_context")
    assert "not one of the contexts" in str(unknown)
