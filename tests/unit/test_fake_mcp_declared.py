"""The declared-server model: tool declarations in a script, their checks at load, how a
declared tool answers, and the 1.x wire shape."""

from __future__ import annotations

import json
from pathlib import Path
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


# tools/list of each built-in fake as the SDK listed it when the tools were Python functions
# (captured from main at 62ad895): a preset lists them byte for byte the same.
TOOLS_LISTED = json.loads((Path(__file__).parent / "fake_mcp_tools_list.json").read_text())


@pytest.mark.parametrize("server", sorted(TOOLS_LISTED))
async def test_a_preset_lists_its_tools_as_the_python_tools_did(server: str) -> None:
    fake = build_server(server)
    async with Client(fake.server, mode="legacy") as client:
        listed = (await client.list_tools()).tools
    dumped = [tool.model_dump(by_alias=True, mode="json", exclude_none=True) for tool in listed]
    assert json.dumps(dumped) == json.dumps(TOOLS_LISTED[server])


async def test_a_script_overrides_a_preset_tool_and_keeps_its_answer() -> None:
    schema = {"properties": {"host": {"enum": ["db1"]}, "command": {"type": "string"}}}
    script = {
        "tools": {
            "mem_ssh": {
                "description": "mine",
                "input_schema": {**schema, "required": ["host", "command"]},
                "calls": {2: {"result": {"text": "scripted"}}},
            }
        }
    }
    fake = build_server("ssh", script=ServerScript.from_data(script))
    async with Client(fake.server, mode="legacy") as client:
        (tool,) = (await client.list_tools()).tools
        first = await client.call_tool("mem_ssh", {"host": "db1", "command": "hostname"})
        second = await client.call_tool("mem_ssh", {"host": "db1", "command": "hostname"})
        refused = await client.call_tool("mem_ssh", {"host": "web", "command": "hostname"})
    assert (tool.description, tool.input_schema["properties"]) == ("mine", schema["properties"])
    # The SDK reads the same schema to check a modern HTTP call's Mcp-Param headers.
    assert fake.server._lowlevel_server.get_tool_input_schema("mem_ssh") == tool.input_schema
    assert (text_of(first), text_of(second)) == ("db1", "scripted")  # the preset's answer, then
    assert refused.is_error
    assert text_of(refused) == "Input validation error: 'web' is not one of ['db1'] (at 'host')"


async def test_a_preset_tool_given_a_store_answers_from_it() -> None:
    script = {"tools": {"chat_post_message": {"store": {"op": "write", "value": "text"}}}}
    fake = build_server("chat", script=ServerScript.from_data(script))
    async with Client(fake.server, mode="legacy") as client:
        posted = await client.call_tool("chat_post_message", {"text": "hi"})
    assert json.loads(text_of(posted))["stored"] == "hi"
    assert [e.kind for e in fake.events.find(kind="store_write")] == ["store_write"]


async def test_a_preset_answer_that_fails_is_an_error_result_as_the_sdk_words_it() -> None:
    # An overriding schema that lets through what the answer cannot use: the SDK's wording
    # for an unexpected failure, which keeps the exception's text on the server.
    script: dict[str, Any] = {"tools": {"mem_ssh": {"input_schema": {"properties": {}}}}}
    vault = build_server("vault")
    ssh = build_server("ssh", script=ServerScript.from_data(script))
    async with Client(vault.server, mode="legacy") as client:
        missing = await client.call_tool("vault_get", {"name": "nope"})
        invalid = await client.call_tool("vault_get", {})
    async with Client(ssh.server, mode="legacy") as client:
        broken = await client.call_tool("mem_ssh", {})
    assert text_of(missing) == "Error executing tool vault_get: no secret named 'nope'"
    assert text_of(invalid) == "Input validation error: 'name' is a required property"
    assert text_of(broken) == "Error executing tool mem_ssh"
    assert [missing.is_error, invalid.is_error, broken.is_error] == [True] * 3
    ends = [e for e in vault.events.events if e.tool == "vault_get" and e.kind != "request"]
    assert [(e.kind, e.detail.get("is_error")) for e in ends] == [("errored", True)] * 2


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
    assert script.declared_tools("ssh", {}).keys() == {"w", "r"}


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
