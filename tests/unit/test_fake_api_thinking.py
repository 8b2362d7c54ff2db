"""Extended thinking, prompt caching and context-management edits of the fake API, through the
real ``anthropic`` SDK, JSON and SSE, with the real API's exact texts."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from fake_servers.anthropic import (
    Agent,
    ContextEditFault,
    FakeAnthropic,
    ModelScript,
    ToolCall,
    Turn,
)
from fake_servers.anthropic._limits import ModelLimits

MODEL = "claude-sonnet-4-6"
DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
ENABLED = {"type": "enabled", "budget_tokens": 1024}
THINKING_FIRST = (
    "messages.{n}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
    "`{kind}`. When `thinking` is enabled, a final `assistant` message must start with a "
    "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We "
    "recommend you include thinking blocks from previous turns. To avoid this requirement, "
    f"disable `thinking`. Please consult our documentation at {DOCS}"
)
MODIFIED = (
    "messages.{n}.content.{k}: `thinking` or `redacted_thinking` blocks in the latest assistant "
    "message cannot be modified. These blocks must remain as they were in the original response."
)


def thinking_script() -> ModelScript:
    return ModelScript(
        agents={
            "solo": Agent(
                turns=[
                    Turn(
                        thinking="I should look at host a first.",
                        redacted_thinking="EnCrYpTeD-opaque==",
                        text="Checking.",
                        tool_use=[ToolCall(name="mem_ssh", input={"host": "a"}, id="toolu_a")],
                    ),
                    Turn(thinking="Load is fine.", text="Host a is fine."),
                ],
                repeat=True,
            )
        }
    )


async def rejected(call: Any) -> tuple[int, str]:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await call
    body = caught.value.body
    assert isinstance(body, dict)
    return caught.value.status_code, body["error"]["message"]


async def tool_loop(stream: bool) -> None:
    fake = FakeAnthropic(thinking_script())
    async with fake.async_client(max_retries=0) as client:
        history: list[dict[str, Any]] = [{"role": "user", "content": "check host a"}]
        if stream:
            async with client.messages.stream(
                model=MODEL,
                max_tokens=4096,
                messages=history,
                thinking=ENABLED,  # type: ignore[arg-type]
            ) as events:
                kinds = [event.type async for event in events]
                first = await events.get_final_message()
        else:
            first = await client.messages.create(
                model=MODEL,
                max_tokens=4096,
                messages=history,
                thinking=ENABLED,  # type: ignore[arg-type]
            )
        blocks = [block.model_dump(exclude_none=True) for block in first.content]
        assert [b["type"] for b in blocks] == ["thinking", "redacted_thinking", "text", "tool_use"]
        assert blocks[0]["thinking"] == "I should look at host a first."
        assert blocks[0]["signature"]
        assert blocks[1]["data"] == "EnCrYpTeD-opaque=="
        if stream:
            raw = fake.journal.records[-1]
            assert raw.response is not None
            assert "content_block_delta" in kinds
        history.append({"role": "assistant", "content": blocks})
        history.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_a", "content": "load 0.1"}
                ],
            }
        )
        second = await client.messages.create(
            model=MODEL,
            max_tokens=4096,
            messages=history,
            thinking=ENABLED,  # type: ignore[arg-type]
        )
        assert second.content[-1].type == "text"
        assert second.usage.output_tokens > 1

        # A runtime that rebuilds history and drops the thinking blocks.
        dropped = [history[0], {"role": "assistant", "content": blocks[2:]}, history[2]]
        call = client.messages.create(
            model=MODEL,
            max_tokens=4096,
            messages=dropped,
            thinking=ENABLED,  # type: ignore[arg-type]
        )
        assert await rejected(call) == (400, THINKING_FIRST.format(n=1, kind="text"))
        only_tool = [history[0], {"role": "assistant", "content": blocks[3:]}, history[2]]
        call = client.messages.create(
            model=MODEL,
            max_tokens=4096,
            messages=only_tool,
            thinking=ENABLED,  # type: ignore[arg-type]
        )
        assert await rejected(call) == (400, THINKING_FIRST.format(n=1, kind="tool_use"))
        # The same history without thinking enabled is fine (thinking blocks are optional then).
        plain = await client.messages.create(model=MODEL, max_tokens=4096, messages=dropped)  # type: ignore[arg-type]
        assert "thinking" not in [b.type for b in plain.content]

        # A runtime that edits the thinking text of the latest assistant turn.
        edited = [dict(b) for b in blocks]
        edited[0]["thinking"] = "I should look at host b first."
        altered = [history[0], {"role": "assistant", "content": edited}, history[2]]
        call = client.messages.create(
            model=MODEL,
            max_tokens=4096,
            messages=altered,
            thinking=ENABLED,  # type: ignore[arg-type]
        )
        assert await rejected(call) == (400, MODIFIED.format(n=1, k=0))
        forged = [dict(b) for b in blocks]
        forged[1]["data"] = "forged"
        call = client.messages.create(
            model=MODEL,
            max_tokens=4096,
            messages=[history[0], {"role": "assistant", "content": forged}, history[2]],  # type: ignore[arg-type]
            thinking=ENABLED,  # type: ignore[arg-type]
        )
        assert await rejected(call) == (400, MODIFIED.format(n=1, k=1))
        # In an earlier turn the real API says the signature is invalid.
        earlier = [
            *altered,
            {"role": "assistant", "content": "done"},
            {"role": "user", "content": "next"},
        ]
        call = client.messages.create(model=MODEL, max_tokens=4096, messages=earlier)  # type: ignore[arg-type]
        assert await rejected(call) == (
            400,
            "messages.1.content.0: Invalid `signature` in `thinking` block",
        )


async def test_thinking_tool_loop_json() -> None:
    await tool_loop(stream=False)


async def test_thinking_tool_loop_stream() -> None:
    await tool_loop(stream=True)


async def test_sse_carries_thinking_and_signature_deltas() -> None:
    fake = FakeAnthropic(thinking_script())
    async with fake.async_client(max_retries=0) as client:
        stream = await client.messages.create(
            model=MODEL,
            max_tokens=4096,
            messages=[{"role": "user", "content": "go"}],
            thinking=ENABLED,  # type: ignore[arg-type]
            stream=True,
        )
        events = [event async for event in stream]
    deltas = [e.delta.type for e in events if e.type == "content_block_delta"]
    assert deltas[:3] == ["thinking_delta", "thinking_delta", "signature_delta"]
    starts = [e.content_block.type for e in events if e.type == "content_block_start"]
    assert starts == ["thinking", "redacted_thinking", "text", "tool_use"]


async def test_no_thinking_blocks_without_thinking_and_omitted_display() -> None:
    fake = FakeAnthropic(thinking_script())
    async with fake.async_client(max_retries=0) as client:
        plain = await client.messages.create(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "go"}]
        )
        assert [b.type for b in plain.content] == ["text", "tool_use"]
        omitted = await client.post(
            "/v1/messages",
            body={
                "model": MODEL,
                "max_tokens": 64,
                "messages": [{"role": "user", "content": "go"}],
                "thinking": {"type": "adaptive", "display": "omitted"},
            },
            cast_to=object,
        )
    assert isinstance(omitted, dict)
    first = omitted["content"][0]
    assert first["type"] == "thinking"
    assert first["thinking"] == ""
    assert first["signature"]


async def test_thinking_parameter_rules() -> None:
    fake = FakeAnthropic(thinking_script())
    async with fake.async_client(max_retries=0) as client:
        call = client.messages.create(
            model=MODEL,
            max_tokens=2000,
            messages=[{"role": "user", "content": "go"}],
            thinking={"type": "enabled", "budget_tokens": 2000},
        )
        assert await rejected(call) == (
            400,
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
            f"documentation at {DOCS}#max-tokens-and-context-window-size",
        )
        prefill = [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "x", "signature": "s"}],
            },
        ]
        call = client.messages.create(model=MODEL, max_tokens=64, messages=prefill)  # type: ignore[arg-type]
        assert await rejected(call) == (
            400,
            "messages.1.content.0: When thinking is disabled, an `assistant` message in the "
            "final position cannot contain `thinking`. To use thinking blocks, enable "
            "`thinking` in your request.",
        )


async def test_prompt_caching_reads_the_prefix_it_wrote() -> None:
    fake = FakeAnthropic(
        ModelScript(agents={"solo": Agent(turns=[Turn(text="ok")], repeat=True)}),
    )
    long_system = [
        {"type": "text", "text": "rules " * 1200, "cache_control": {"type": "ephemeral"}}
    ]
    async with fake.async_client(max_retries=0) as client:
        first_msgs = [{"role": "user", "content": "one"}]
        counted = await client.messages.count_tokens(
            model=MODEL,
            system=long_system,
            messages=first_msgs,  # type: ignore[arg-type]
        )
        first = await client.messages.create(
            model=MODEL,
            max_tokens=64,
            system=long_system,
            messages=first_msgs,  # type: ignore[arg-type]
        )
        usage = first.usage
        assert usage.cache_read_input_tokens == 0
        assert usage.cache_creation_input_tokens is not None
        assert usage.cache_creation_input_tokens >= 1024
        total = usage.input_tokens + usage.cache_creation_input_tokens
        assert total == counted.input_tokens
        second = await client.messages.create(
            model=MODEL,
            max_tokens=64,
            system=long_system,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": "two, a different question"}],
        )
        assert second.usage.cache_read_input_tokens == usage.cache_creation_input_tokens
        assert second.usage.cache_creation_input_tokens == 0
        # Another model has its own cache; a short prefix is never cached.
        other = await client.messages.create(
            model="claude-opus-4-6",
            max_tokens=64,
            system=long_system,
            messages=first_msgs,  # type: ignore[arg-type]
        )
        assert other.usage.cache_read_input_tokens == 0
        short = [{"type": "text", "text": "brief", "cache_control": {"type": "ephemeral"}}]
        for _ in range(2):
            tiny = await client.messages.create(
                model=MODEL,
                max_tokens=64,
                system=short,
                messages=first_msgs,  # type: ignore[arg-type]
            )
            assert (tiny.usage.cache_creation_input_tokens, tiny.usage.cache_read_input_tokens) == (
                0,
                0,
            )


def loop_history(rounds: int) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = [{"role": "user", "content": "check every host"}]
    for i in range(rounds):
        history.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": f"toolu_{i}", "name": "mem_ssh", "input": {"h": i}}
                ],
            }
        )
        history.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": "x" * 400}
                ],
            }
        )
    return history


CLEAR = {
    "edits": [
        {
            "type": "clear_tool_uses_20250919",
            "trigger": {"type": "input_tokens", "value": 300},
            "keep": {"type": "tool_uses", "value": 2},
        }
    ]
}
BETA = {"anthropic-beta": "context-management-2025-06-27"}


async def create(client: anthropic.AsyncAnthropic, **body: Any) -> Any:
    return await client.post(
        "/v1/messages",
        body={"model": MODEL, "max_tokens": 64, **body},
        cast_to=object,
        options={"headers": BETA},
    )


async def test_context_edits_clear_old_tool_results_and_journal_them() -> None:
    fake = FakeAnthropic(
        ModelScript(agents={"solo": Agent(turns=[Turn(text="seen: {tool_results}")], repeat=True)})
    )
    history = loop_history(5)
    async with fake.async_client(max_retries=0) as client:
        full = await client.messages.count_tokens(model=MODEL, messages=history)  # type: ignore[arg-type]
        answer = await create(client, messages=history, context_management=CLEAR)
    edits = answer["context_management"]["applied_edits"]
    assert len(edits) == 1
    assert edits[0]["type"] == "clear_tool_uses_20250919"
    assert edits[0]["cleared_tool_uses"] == 3
    assert edits[0]["cleared_input_tokens"] > 0
    assert answer["usage"]["input_tokens"] == full.input_tokens - edits[0]["cleared_input_tokens"]
    record = fake.journal.records[-1]
    assert record.context_edits is not None
    assert record.context_edits["cleared_tool_use_ids"] == ["toolu_0", "toolu_1", "toolu_2"]
    # The model saw the latest (kept) result: the echo reads it.
    assert answer["content"][0]["text"] == "seen: " + "x" * 400


async def test_context_edit_below_the_trigger_clears_nothing() -> None:
    fake = FakeAnthropic(ModelScript(agents={"solo": Agent(turns=[Turn(text="ok")], repeat=True)}))
    async with fake.async_client(max_retries=0) as client:
        answer = await create(client, messages=loop_history(1), context_management=CLEAR)
    assert answer["context_management"] == {"applied_edits": []}


async def test_context_edit_faults_skip_and_clear_all() -> None:
    fake = FakeAnthropic(
        ModelScript(
            agents={"solo": Agent(turns=[Turn(text="ok")], repeat=True)},
            limits={MODEL: ModelLimits(context_window=700)},
        )
    )
    history = loop_history(8)
    async with fake.async_client(max_retries=0) as client:
        full = await client.messages.count_tokens(model=MODEL, messages=history)  # type: ignore[arg-type]
        assert full.input_tokens > 700
        ok = await create(client, messages=history, context_management=CLEAR)
        assert ok["usage"]["input_tokens"] <= 700
        fake.inject(ContextEditFault(mode="skip"))
        with pytest.raises(anthropic.BadRequestError) as caught:
            await create(client, messages=history, context_management=CLEAR)
        assert str(caught.value.body["error"]["message"]).startswith("prompt is too long: ")  # type: ignore[index]
        assert fake.journal.records[-1].fault == {"kind": "context_edit", "mode": "skip"}
        fake.inject(ContextEditFault(mode="clear_all"))
        cleared = await create(client, messages=history, context_management=CLEAR)
    assert cleared["context_management"]["applied_edits"][0]["cleared_tool_uses"] == 8
    assert fake.journal.records[-1].context_edits["cleared_tool_use_ids"] == [  # type: ignore[index]
        f"toolu_{i}" for i in range(8)
    ]


async def test_clear_thinking_keeps_the_latest_turns() -> None:
    script = thinking_script()
    fake = FakeAnthropic(script)
    async with fake.async_client(max_retries=0) as client:
        history: list[dict[str, Any]] = [{"role": "user", "content": "check host a"}]
        first = await client.messages.create(
            model=MODEL,
            max_tokens=4096,
            messages=history,
            thinking=ENABLED,  # type: ignore[arg-type]
        )
        history += [
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_a", "content": "ok"}],
            },
        ]
        second = await client.messages.create(
            model=MODEL,
            max_tokens=4096,
            messages=history,
            thinking=ENABLED,  # type: ignore[arg-type]
        )
        history += [
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in second.content],
            },
            {"role": "user", "content": "and again"},
        ]
        answer = await create(
            client,
            max_tokens=4096,
            messages=history,
            thinking=ENABLED,
            context_management={
                "edits": [
                    {
                        "type": "clear_thinking_20251015",
                        "keep": {"type": "thinking_turns", "value": 1},
                    }
                ]
            },
        )
    edit = answer["context_management"]["applied_edits"][0]
    assert edit["type"] == "clear_thinking_20251015"
    assert edit["cleared_thinking_turns"] == 1
    assert edit["cleared_input_tokens"] > 0
    assert fake.journal.records[-1].context_edits["cleared_thinking_blocks"] == 2  # type: ignore[index]


def test_a_context_edit_fault_is_refused_in_a_turn() -> None:
    from harness.errors import ScriptError

    with pytest.raises(ScriptError, match="injected at run time"):
        ModelScript.from_data(
            {"agents": {"a": {"turns": [{"text": "x", "fail": [{"kind": "context_edit"}]}]}}}
        )
