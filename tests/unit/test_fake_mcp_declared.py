"""The declared-server model: tool declarations in a script, their checks at load, how a
declared tool answers, and the 1.x wire shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client
from mcp_types import CallToolResult, TextContent

from fake_servers.mcp import ServerScript, build_server
from fake_servers.mcp._legacy import legacy_result
from harness.errors import ScenarioError, ScriptError
from harness.scenarios.model import parse_scenario


def text_of(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def load(data: dict[str, Any], server: str = "declared") -> None:
    build_server(server, script=ServerScript.from_data(data))


def test_an_input_schema_that_is_not_json_schema_names_the_field() -> None:
    bad = {"tools": {"t": {"input_schema": {"properties": {"a": {"type": "strng"}}}}}}
    with pytest.raises(ScriptError, match="not a valid JSON Schema") as caught:
        load(bad)
    assert caught.value.field == "tools.t.input_schema"


def test_an_input_schema_must_describe_an_object() -> None:
    with pytest.raises(ScriptError, match="type: object"):
        load({"tools": {"t": {"input_schema": {"type": "array"}}}})


@pytest.mark.parametrize("outcome", [{"hang": True}, {"crash": {"how": "exit"}}])
def test_work_that_outlives_a_cancel_must_end(outcome: dict[str, Any]) -> None:
    with pytest.raises(ScriptError, match="need an outcome that ends"):
        load({"tools": {"t": {"default": {"ignore_cancel": True, **outcome}}}})


def test_a_declaration_cannot_replace_a_built_in_tool() -> None:
    with pytest.raises(ScriptError, match="already has a tool 'mem_ssh'"):
        load({"tools": {"mem_ssh": {"description": "mine"}}}, server="ssh")


def test_a_built_in_server_names_how_to_declare_a_missing_tool() -> None:
    with pytest.raises(ScriptError, match="declare a new one"):
        load({"tools": {"nope": {"default": {"latency": 1}}}}, server="ssh")


def test_store_shorthand_is_a_store_spec() -> None:
    script = ServerScript.from_data({"tools": {"w": {"store": "write"}, "r": {"store": "read"}}})
    spec = script.tools["w"].store_spec
    assert spec is not None
    assert (spec.op, spec.key, spec.caller, spec.default_key) == (
        "write",
        "context_id",
        True,
        "default",
    )
    assert script.declared_tools("ssh", {"mem_ssh"}).keys() == {"w", "r"}


async def test_a_built_in_server_gains_declared_tools_beside_its_own() -> None:
    script = {"tools": {"whoami": {"description": "Who runs the commands."}}}
    fake = build_server("ssh", script=ServerScript.from_data(script))
    async with Client(fake.server, mode="legacy") as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        echo = await client.call_tool("whoami", {"x": 1}, read_timeout_seconds=5)
    assert listed == {"mem_ssh", "whoami"}
    assert json.loads(text_of(echo)) == {"tool": "whoami", "arguments": {"x": 1}}


async def test_a_tool_declared_without_description_or_schema_lists_empty_and_takes_any_object() -> (
    None
):
    script = {"tools": {"ping": {"default": {"result": {"text": "pong"}}}}}
    fake = build_server("declared", script=ServerScript.from_data(script))
    async with Client(fake.server, mode="legacy") as client:
        (listed,) = (await client.list_tools()).tools
        answered = await client.call_tool("ping", {"any": [1, "x"]}, read_timeout_seconds=5)
    assert (listed.name, listed.description, listed.input_schema) == (
        "ping",
        "",
        {"type": "object"},
    )
    assert not answered.is_error
    assert text_of(answered) == "pong"


async def test_a_store_without_key_or_caller_uses_its_default_context() -> None:
    script = {
        "tools": {
            "put": {"store": {"op": "write", "caller": False, "default_key": "General"}},
            "get": {"store": {"op": "read", "caller": False, "default_key": "General"}},
        }
    }
    fake = build_server("declared", script=ServerScript.from_data(script))
    meta = {"harness/context_id": "Blog"}
    async with Client(fake.server, mode="legacy") as client:
        await client.call_tool("put", {"note": "n"}, meta=meta, read_timeout_seconds=5)
        got = await client.call_tool("get", {}, read_timeout_seconds=5)
    assert json.loads(text_of(got)) == {
        "context_id": "General",
        "scope": "default",
        "items": [{"note": "n"}],
    }
    write = fake.events.find(kind="store_write")[0]
    assert (write.context_id, write.detail["key"]) == ("Blog", "General")


def test_legacy_results_drop_2x_only_fields() -> None:
    result = CallToolResult(content=[TextContent(type="text", text="x")])
    assert "resultType" in result.model_dump(by_alias=True, mode="json")
    assert legacy_result(result) == {"content": [{"type": "text", "text": "x"}], "isError": False}
    init = {"capabilities": {"tools": {}, "extensions": {"x": {}}}, "resultType": "complete"}
    assert legacy_result(init) == {"capabilities": {"tools": {}}}


SCENARIO = """\
name: declared
description: A declared server in a scenario.
runtime: {prompt: hi}
oracles: [agents_completed]
expect: {buggy: [agents_completed]}
servers:
  jira:
    fake: declared
    script:
      tools:
        search:
          input_schema:
            properties: {choice: {type: string}}
          default: {latency: {uniform: [1, 2]}}
model: {agents: {main: {turns: [{text: done}]}}}
"""


def test_a_scenario_declares_tools_with_drawn_latency_and_schema_as_data() -> None:
    scenario = parse_scenario(SCENARIO)
    assert list(scenario.distributions) == ["/servers/jira/script/tools/search/default/latency"]
    script = scenario.servers["jira"].script
    assert isinstance(script, dict)
    assert script["tools"]["search"]["input_schema"]["properties"] == {"choice": {"type": "string"}}


def test_a_scenario_with_a_bad_declaration_names_line_and_field() -> None:
    bad = SCENARIO.replace("{choice: {type: string}}", "{choice: {type: strng}}")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(bad)
    assert caught.value.line == 12  # the input_schema key the field names
    assert caught.value.field is not None
    assert caught.value.field.startswith("servers.jira.script.tools.search.input_schema")
