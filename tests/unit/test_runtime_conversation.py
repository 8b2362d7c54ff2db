"""Conversation state machine, compaction cut points and the scope policy (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.runtime.compaction import SUMMARY_MARKER, CompactionSettings, Compactor
from harness.runtime.config import COMPACTION_PRESETS
from harness.runtime.conversation import Conversation, ConversationStateError
from harness.runtime.events import RuntimeEvents
from harness.runtime.scope import ScopePolicy, ScopeRefused
from harness.telemetry.semconv import META_CONTEXT_ID


class FixedClock:
    def now(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        return None


def _use(call_id: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": "mem_ssh", "input": {}}


def _result(call_id: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": "ok"}


def _tool_round(conv: Conversation, call_id: str) -> None:
    conv.begin_request()
    conv.add_response([_use(call_id)], "tool_use")
    conv.add_tool_results([_result(call_id)])


def test_state_machine_walks_the_tool_loop() -> None:
    conv = Conversation(strict=True)
    conv.add_user_text("hi")
    states = [conv.state]
    conv.begin_request()
    states.append(conv.state)
    conv.add_response([_use("t1"), _use("t2")], "tool_use")
    states.append(conv.state)
    assert conv.open_tool_ids == ("t1", "t2")
    conv.add_tool_results([_result("t2"), _result("t1")])
    states.append(conv.state)
    assert [s.value for s in states] == ["ready", "awaiting_model", "tools_open", "ready"]
    assert len(conv) == 3


def test_strict_refuses_results_for_calls_that_are_not_open() -> None:
    conv = Conversation(strict=True)
    conv.add_user_text("hi")
    conv.begin_request()
    conv.add_response([_use("t1")], "tool_use")
    with pytest.raises(ConversationStateError, match=r"do not answer the open tool calls \['t1'\]"):
        conv.add_tool_results([_result("t9")])
    with pytest.raises(ConversationStateError, match="tools_open"):
        conv.begin_request()
    with pytest.raises(ConversationStateError, match=r"compaction refused.*open tool calls"):
        conv.replace_range_with_summary(1, {"role": "user", "content": "s"})


def test_lenient_conversation_lets_the_buggy_runtime_corrupt_history() -> None:
    conv = Conversation(strict=False)
    conv.add_user_text("hi")
    conv.begin_request()
    conv.add_response([_use("t1")], "tool_use")
    conv.replace_range_with_summary(2, {"role": "user", "content": "summary"})
    conv.add_tool_results([_result("t1")])
    assert [m["role"] for m in conv.messages] == ["user", "user"]


def test_messages_are_copies() -> None:
    conv = Conversation(strict=True)
    conv.add_user_text("hi")
    conv.messages[0]["content"] = "changed"
    assert conv.messages[0]["content"][0]["text"] == "hi"


def _compactor(preset: str, keep_last: int) -> Compactor:
    """The compactor of a ``compaction`` preset's knobs."""
    knobs = COMPACTION_PRESETS[preset]
    settings = CompactionSettings(
        trigger=knobs["compaction_trigger"],  # type: ignore[arg-type]
        cut=knobs["compaction_cut"],  # type: ignore[arg-type]
        errors=knobs["compaction_errors"],  # type: ignore[arg-type]
        threshold_tokens=10,
        keep_last=keep_last,
    )
    return Compactor(settings, events=RuntimeEvents(FixedClock()))


async def _summary(_: list[dict[str, Any]]) -> str:
    return "earlier work"


async def _never(_: list[dict[str, Any]]) -> str:
    raise AssertionError("no summary may be requested")


async def test_eager_compaction_on_tool_use_orphans_the_result() -> None:
    conv = Conversation(strict=False)
    conv.add_user_text("start")
    _tool_round(conv, "t1")
    conv.begin_request()
    conv.add_response([_use("t2")], "tool_use")
    compactor = _compactor("eager", keep_last=1)
    assert compactor.due(100, conv)
    result = await compactor.compact(
        conv, agent="a", context_tokens=100, stop_reason="tool_use", summarize=_summary
    )
    assert result.outcome == "compacted"
    conv.add_tool_results([_result("t2")])
    messages = conv.messages
    # The tool_use t2 went into the summary; its tool_result now follows a user message.
    assert messages[0]["content"][0]["text"].startswith(SUMMARY_MARKER)
    assert all(b.get("id") != "t2" for m in messages for b in m["content"])
    assert messages[1]["content"][0]["tool_use_id"] == "t2"


async def test_between_turns_skips_while_tools_are_open_and_cuts_at_a_turn_boundary() -> None:
    conv = Conversation(strict=True)
    conv.add_user_text("start")
    _tool_round(conv, "t1")
    conv.begin_request()
    conv.add_response([{"type": "text", "text": "done"}], "end_turn")
    conv.add_user_text("next task")
    _tool_round(conv, "t2")
    compactor = _compactor("between_turns", keep_last=2)
    conv.begin_request()
    conv.add_response([_use("t3")], "tool_use")
    assert not compactor.due(100, conv)
    # Asked anyway, the strict history refuses before any summary is requested.
    refused = await compactor.compact(
        conv, agent="a", context_tokens=100, stop_reason="tool_use", summarize=_never
    )
    assert (refused.outcome, refused.reason) == (
        "failed",
        "compaction refused: tool calls ['t3'] are open",
    )
    conv.add_tool_results([_result("t3")])
    result = await compactor.compact(
        conv, agent="a", context_tokens=100, stop_reason=None, summarize=_summary
    )
    assert result.outcome == "compacted"
    messages = conv.messages
    # The kept part starts at the assistant's t3 call: every tool_result follows its tool_use.
    assert messages[1]["role"] == "assistant"
    assert messages[1]["content"][0]["id"] == "t3"
    for i, message in enumerate(messages):
        for block in message["content"]:
            if block.get("type") == "tool_result":
                previous = messages[i - 1]["content"]
                assert any(b.get("id") == block["tool_use_id"] for b in previous)


async def test_between_turns_failure_leaves_history_intact() -> None:
    conv = Conversation(strict=True)
    conv.add_user_text("one")
    _tool_round(conv, "t1")
    conv.begin_request()
    conv.add_response([{"type": "text", "text": "ok"}], "end_turn")
    conv.add_user_text("two")
    before = conv.messages

    async def broken(_: list[dict[str, Any]]) -> str:
        raise RuntimeError("529 overloaded")

    result = await _compactor("between_turns", keep_last=1).compact(
        conv, agent="a", context_tokens=100, stop_reason=None, summarize=broken
    )
    assert result.outcome == "failed"
    assert "529 overloaded" in result.reason
    assert conv.messages == before


def test_scope_thread_sends_the_callers_context_only() -> None:
    policy = ScopePolicy("thread")
    decision = policy.apply(
        server="chat",
        tool="chat_list_messages",
        arguments={},
        context_id="Blog",
        declared_scope="all",
        automated=True,
    )
    assert decision.arguments == {}
    assert decision.meta == {META_CONTEXT_ID: "Blog"}
    assert decision.effective_scope == "Blog"


def test_scope_declared_makes_the_declared_scope_explicit() -> None:
    policy = ScopePolicy("declared")
    decision = policy.apply(
        server="chat",
        tool="chat_list_messages",
        arguments={"limit": 5},
        context_id="Blog",
        declared_scope="all",
        automated=True,
    )
    assert decision.arguments == {"limit": 5, "context_id": "all"}
    assert decision.effective_scope == "all"


def test_scope_declared_refuses_an_undeclared_automated_query() -> None:
    with pytest.raises(ScopeRefused, match="declares no scope"):
        ScopePolicy("declared").apply(
            server="chat",
            tool="chat_list_messages",
            arguments={},
            context_id="Blog",
            declared_scope=None,
            automated=True,
        )


def test_scope_leaves_interactive_and_unscoped_calls_alone() -> None:
    policy = ScopePolicy("declared")
    interactive = policy.apply(
        server="chat",
        tool="chat_list_messages",
        arguments={},
        context_id="Blog",
        declared_scope=None,
        automated=False,
    )
    assert interactive.arguments == {}
    other = policy.apply(
        server="ssh",
        tool="mem_ssh",
        arguments={"host": "h"},
        context_id="Blog",
        declared_scope=None,
        automated=True,
    )
    assert other.effective_scope is None
    assert other.meta == {}
