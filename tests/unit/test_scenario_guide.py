"""The scenario-authoring guide (docs/scenarios.md) names everything a scenario can say: every
field, knob, fault, server behaviour, script condition and placeholder, and every oracle with
its parameters. A field added to the format without a word in the guide fails here, naming it;
every complete example in the guide loads."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from fake_servers.anthropic import script as model_script
from fake_servers.anthropic._conversation import _PLACEHOLDER
from fake_servers.mcp import SERVER_NAMES, chat
from fake_servers.mcp import _script as server_script
from harness.faults import api_faults, plan
from harness.faults.toxics import TOXIC_TYPES
from harness.oracles import ORACLES, PARAMS
from harness.runtime import config
from harness.scenarios import model

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "scenarios.md"
TEXT = GUIDE.read_text(encoding="utf-8")

MODELS: list[type[BaseModel]] = [
    model.Scenario,
    model.RuntimeSection,
    model.Budget,
    model.Expectation,
    config.PoliciesConfig,
    config.ServerConfig,
    config.AgentConfig,
    config.ScheduledTaskConfig,
    config.ApprovalsConfig,
    config.CompactionConfig,
    config.ThinkingConfig,
    model_script.ModelScript,
    model_script.Agent,
    model_script.Turn,
    model_script.ToolCall,
    model_script.Condition,
    server_script.ServerScript,
    server_script.ToolScript,
    server_script.MatchRule,
    server_script.Behaviour,
    server_script.ResultSpec,
    server_script.Crash,
    server_script.ProtocolError,
    chat.ChatFixture,
    chat._FixtureMessage,
    plan.FrameMatch,
]


def mentioned(word: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", TEXT) is not None


def literal_tags(union: object, key: str) -> list[str]:
    members = typing.get_args(typing.get_args(union)[0])
    return [str(m.model_fields[key].default) for m in members]


def test_every_field_of_the_format_is_in_the_guide() -> None:
    missing = [
        f"{m.__name__}.{name}" for m in MODELS for name in m.model_fields if not mentioned(name)
    ]
    assert not missing, f"docs/scenarios.md does not mention: {', '.join(missing)}"


def test_every_knob_is_in_the_guide_as_code() -> None:
    missing = [k for k in config.PoliciesConfig.model_fields if f"`{k}`" not in TEXT]
    assert not missing, f"docs/scenarios.md does not document the knobs: {missing}"


def test_every_oracle_and_its_parameters_are_in_the_guide() -> None:
    missing = [name for name in ORACLES if f"`{name}`" not in TEXT]
    missing += [
        f"{name}.{field}"
        for name, params in PARAMS.items()
        for field in params.model_fields
        if f"`{field}`" not in TEXT
    ]
    assert not missing, f"docs/scenarios.md does not document: {missing}"


def test_every_fault_server_and_placeholder_is_in_the_guide() -> None:
    names = literal_tags(plan.FaultEntry, "type")
    names += literal_tags(api_faults.Fault, "kind")
    names += list(TOXIC_TYPES) + list(SERVER_NAMES)
    missing = [n for n in names if f"`{n}`" not in TEXT]
    placeholders = re.findall(r"\w+", _PLACEHOLDER.pattern.split("(?P<name>")[1].split(")")[0])
    missing += [f"{{{p}}}" for p in placeholders if f"{{{p}}}" not in TEXT]
    missing += [
        p for p in ("{tool_results.TOOL}", "{tool_result[N]}", "{tool_result[ID]}") if p not in TEXT
    ]
    assert not missing, f"docs/scenarios.md does not document: {missing}"


def blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", TEXT, flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(blocks())))
def test_every_yaml_example_parses_and_every_whole_scenario_loads(index: int) -> None:
    block = blocks()[index]
    data = yaml.safe_load(block)
    assert data is not None
    if block.startswith("name:"):
        scenario = model.parse_scenario(block, path=GUIDE)
        assert scenario.oracle_names
        return
    # A section shown alone validates as that section.
    sections: dict[str, type[BaseModel]] = {
        "script": server_script.ServerScript,
        "model": model_script.ModelScript,
        "runtime": model.RuntimeSection,
        "budget": model.Budget,
        "expect": model.Expectation,
    }
    for key, section in sections.items():
        if isinstance(data.get(key), dict) and "{...}" not in block:
            section.model_validate(data[key])
    runtime = data.get("runtime")
    if isinstance(runtime, dict) and "{...}" not in block:
        # What a scenario checks across the section: thinking fits within max_tokens.
        shown = model.RuntimeSection.model_validate(runtime)
        config.check_thinking_budget(shown.thinking, shown.max_tokens, loc=("runtime",))
    if isinstance(data.get("script"), dict):
        # A script shown alone builds a server as written (its declarations and schemas
        # checked), not only as a shape.
        from fake_servers.mcp import SERVER_NAMES, build_server

        script = server_script.ServerScript.model_validate(data["script"])
        fits = []
        for name in SERVER_NAMES:
            try:
                build_server(name, script=script)
            except Exception:
                continue
            fits.append(name)
        assert fits, f"no server takes the script of example {index} as written"
    # Knob values and server entries shown alone are checked as a scenario would check them.
    if isinstance(data.get("policies"), dict):
        for overrides in data["policies"].values():
            model.PolicyOverrides.model_validate(overrides)
    if isinstance(data.get("servers"), dict) and "{...}" not in block:
        for server in data["servers"].values():
            config.ServerConfig.model_validate(server)
    faults = data.get("faults")
    if isinstance(faults, list) and not any("chance" in f for f in faults):
        plan.FaultPlan.model_validate(faults)


def test_the_guides_first_scenario_reproduces_under_buggy_and_holds_under_fixed() -> None:
    from harness.scenarios.run import run_scenario

    first = model.parse_scenario(blocks()[0], path=GUIDE)
    buggy = run_scenario(first, policy="buggy")
    fixed = run_scenario(first, policy="fixed")
    assert (buggy.outcome, fixed.outcome) == ("reproduced", "held")
    by_name = {v.name: v for v in buggy.verdicts}
    assert by_name["answer_contains"].fails
    # One call cut off, said in the singular.
    assert "mem_ssh (request 4) was cut off" in by_name["no_teardown_under_calls"].explanation


def test_the_guide_names_the_required_fields() -> None:
    required = [n for n, f in model.Scenario.model_fields.items() if f.is_required()]
    sentence = re.search(r"((?:`\w+`, )*`\w+`) and `(\w+)` \(with at least one oracle", TEXT)
    assert sentence is not None
    shown = [*re.findall(r"`(\w+)`", sentence.group(1)), sentence.group(2)]
    assert sorted(shown) == sorted(required)


def test_the_readme_leads_to_the_guide() -> None:
    assert "(docs/scenarios.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_names_every_bug_file_and_their_number() -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    files = sorted((ROOT / "scenarios" / "bugs").glob("*.yaml"))
    missing = [f.stem for f in files if f"#{f.stem.rsplit('_', 1)[1]}" not in readme]
    assert not missing, f"README.md does not name the threads of {missing}"
    words = {21: "Twenty-one", 22: "Twenty-two", 23: "Twenty-three", 24: "Twenty-four"}
    assert f"{words.get(len(files), len(files))} public bugs" in readme


DESCRIBED = (
    "Scenario",
    "RuntimeSection",
    "Budget",
    "Expectation",
    "ModelScript",
    "Agent",
    "Turn",
    "ToolCall",
    "Condition",
    "ModelLimits",
    "RateLimit",
    "StreamError",
)


def test_harness_schema_describes_the_scenario_script_and_oracle_fields() -> None:
    schema = model.json_schema()
    defs = {"Scenario": schema, **schema["$defs"]}
    names = [*DESCRIBED, *(f"Oracle_{name}" for name in PARAMS)]
    missing = [
        f"{name}.{prop}"
        for name in names
        for prop, node in defs[name].get("properties", {}).items()
        if not node.get("description")
    ]
    assert not missing, f"harness schema has no description for: {missing}"
    # An editor completes oracle names and checks their parameters.
    items = schema["properties"]["oracles"]["items"]["anyOf"]
    assert set(ORACLES) <= set(items[0]["enum"])
    assert "^answer_contains(#.+)?$" in items[2]["patternProperties"]
