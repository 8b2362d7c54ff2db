"""The scope knobs: the default query scope (and the founding preset that expands to it) and
the chat server's resources, recall tool and caller-context writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import CallToolResult, TextContent

from fake_servers.mcp import build_server
from harness.errors import ConfigError, ScenarioError
from harness.runtime.config import PoliciesConfig
from harness.runtime.conversation import Conversation, ConversationState
from harness.runtime.scope import ScopePolicy
from harness.scenarios.model import parse_scenario
from harness.telemetry.semconv import META_CONTEXT_ID

FIXTURE = """\
default_context: a1
contexts:
  a1: [{at: "2026-11-27T08:00:00Z", author: a, text: "deploy freeze INFRA-212"}]
  a2: [{at: "2026-11-27T09:00:00Z", author: a, text: "pager quiet"}]
  b1: [{at: "2026-11-27T10:00:00Z", author: b, text: "freeze the budget"}]
resources:
  team-a: [a1, a2]
"""


def test_the_founding_scope_values_are_presets_and_a_set_knob_wins() -> None:
    assert PoliciesConfig(scope="inherit").default_query_scope == "thread"
    assert PoliciesConfig(scope="explicit").default_query_scope == "declared"
    assert PoliciesConfig().default_query_scope == "declared"
    chosen = PoliciesConfig.model_validate({"scope": "inherit", "default_query_scope": "resource"})
    assert chosen.default_query_scope == "resource"
    assert PoliciesConfig().subagent_context == "fresh"


def test_resource_scope_is_added_only_where_the_tool_takes_a_scope() -> None:
    policy = ScopePolicy("resource")
    common: dict[str, Any] = {"server": "chat", "context_id": "a1", "declared_scope": None}
    search = policy.apply(
        tool="chat_search", arguments={"query": "x"}, automated=False, accepts={"scope"}, **common
    )
    assert search.arguments == {"query": "x", "scope": "resource"}
    assert search.effective_scope == "resource"
    post = policy.apply(
        tool="chat_post_message",
        arguments={"text": "x"},
        automated=True,
        accepts={"text"},
        **common,
    )
    assert post.arguments == {"text": "x"}
    assert post.meta == {META_CONTEXT_ID: "a1"}
    named = policy.apply(
        tool="chat_search",
        arguments={"query": "x", "scope": "thread"},
        automated=False,
        accepts={"scope"},
        **common,
    )
    assert named.arguments["scope"] == "thread"


def test_an_unknown_default_query_scope_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="thread, resource, declared"):
        ScopePolicy("channel")  # type: ignore[arg-type]


def _json(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result
    block = result.content[0]
    assert isinstance(block, TextContent)
    data: dict[str, Any] = json.loads(block.text)
    return data


async def test_chat_resources_search_and_caller_writes(tmp_path: Path) -> None:
    fixture = tmp_path / "chat.yaml"
    fixture.write_text(FIXTURE, encoding="utf-8")
    server = build_server("chat", chat_fixture=fixture).server
    as_a2 = {META_CONTEXT_ID: "a2"}
    async with Client(server, mode="legacy") as client:
        thread = _json(await client.call_tool("chat_search", {"query": "FREEZE"}, meta=as_a2))
        assert (thread["scope"], thread["hits"]) == ("caller", 0)
        team = _json(
            await client.call_tool(
                "chat_search", {"query": "freeze", "scope": "resource"}, meta=as_a2
            )
        )
        assert team["contexts"] == ["a1", "a2"]
        assert [m["text"] for m in team["messages"]] == ["deploy freeze INFRA-212"]
        everyone = _json(await client.call_tool("chat_search", {"query": "freeze", "scope": "all"}))
        assert everyone["hits"] == 2
        # A context in no resource is a resource of its own.
        alone = _json(
            await client.call_tool("chat_list_messages", {"context_id": "b1", "scope": "resource"})
        )
        assert alone["contexts"] == ["b1"]
        posted = _json(await client.call_tool("chat_post_message", {"text": "noted"}, meta=as_a2))
        assert posted["context_id"] == "a2"
        listed = _json(await client.call_tool("chat_list_messages", {}, meta=as_a2))
        assert listed["messages"][-1]["text"] == "noted"
        bad = await client.call_tool("chat_search", {"query": "x", "scope": "team"})
        assert bad.is_error
        to_all = await client.call_tool("chat_post_message", {"text": "x", "context_id": "all"})
        assert to_all.is_error


def test_a_resource_naming_an_unknown_context_names_the_field(tmp_path: Path) -> None:
    fixture = tmp_path / "chat.yaml"
    fixture.write_text(FIXTURE.replace("[a1, a2]", "[a1, a9]"), encoding="utf-8")
    with pytest.raises(ConfigError, match="'a9' is not one of the contexts") as info:
        build_server("chat", chat_fixture=fixture)
    assert info.value.field == "resources.team-a.1"


def test_another_writer_of_a_session_keeps_the_open_turn_last() -> None:
    conv = Conversation(strict=True)
    conv.add_user_text("audit")
    conv.begin_request()
    conv.add_response([{"type": "tool_use", "id": "t1", "name": "spawn", "input": {}}], "tool_use")
    shown = [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "ls"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1"}]},
    ]
    conv.insert_settled(shown)
    assert [m["role"] for m in conv.messages] == ["user", "assistant", "user", "assistant"]
    assert conv.messages[-1]["content"][0]["id"] == "t1"
    summary = {"role": "user", "content": [{"type": "text", "text": "summary"}]}
    assert conv.replace_settled(summary) == 3
    assert [m["role"] for m in conv.messages] == ["user", "assistant"]
    # The open call's result still fits: the state machine never noticed the writes.
    assert conv.state is ConversationState.TOOLS_OPEN
    conv.add_tool_results([{"type": "tool_result", "tool_use_id": "t1", "content": "done"}])
    assert conv.state is ConversationState.READY


def test_a_scope_knob_for_a_user_runtime_is_refused_naming_it() -> None:
    text = """\
name: mine
description: x
runtime: {adapter: "my_pkg.adapter:create", prompt: hi}
model: {agents: {main: {turns: [{text: ok}]}}}
oracles: [tasks_answered]
expect: {buggy: [tasks_answered]}
policies:
  buggy: {subagent_context: inherit}
"""
    with pytest.raises(ScenarioError, match="subagent_context is a knob of the reference runtime"):
        parse_scenario(text)
