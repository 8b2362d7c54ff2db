"""Fidelity of the fake API's limits, tool definitions, versions and beta-gated fields, through
the real ``anthropic`` SDK: status, error type and the real API's exact message texts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
import pytest

from fake_servers.anthropic import Agent, FakeAnthropic, ModelScript, Turn
from fake_servers.anthropic._limits import ModelLimits

MODEL = "claude-sonnet-4-6"
PATTERN = "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'"


def tool(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "input_schema": {"type": "object"}, **extra}


def script(**extra: Any) -> ModelScript:
    return ModelScript(agents={"solo": Agent(turns=[Turn(text="ok")], repeat=True)}, **extra)


@pytest.fixture
async def client() -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with FakeAnthropic(script()).async_client(max_retries=0) as sdk:
        yield sdk


async def rejected(call: Any) -> tuple[int, str, str]:
    with pytest.raises(anthropic.APIStatusError) as caught:
        await call
    body = caught.value.body
    assert isinstance(body, dict)
    return caught.value.status_code, body["error"]["type"], body["error"]["message"]


@pytest.mark.parametrize(
    ("model", "max_tokens", "message"),
    [
        (
            "claude-sonnet-4-5-20250929",
            200_000,
            "max_tokens: 200000 > 64000, which is the maximum allowed number of output tokens "
            "for claude-sonnet-4-5-20250929",
        ),
        (
            "claude-sonnet-4-5",
            128_000,
            "max_tokens: 128000 > 64000, which is the maximum allowed number of output tokens "
            "for claude-sonnet-4-5",
        ),
        (
            MODEL,
            10_000_000,
            "max_tokens: 10000000 > 128000, which is the maximum allowed number of output tokens "
            "for claude-sonnet-4-6",
        ),
    ],
)
async def test_max_tokens_above_the_models_output_limit(
    client: anthropic.AsyncAnthropic, model: str, max_tokens: int, message: str
) -> None:
    # An explicit timeout: the SDK refuses a large non-streaming max_tokens without one.
    call = client.messages.create(
        model=model,
        max_tokens=max_tokens,
        messages=[{"role": "user", "content": "hi"}],
        timeout=30,
    )
    assert await rejected(call) == (400, "invalid_request_error", message)


async def test_max_tokens_at_the_limit_and_unknown_models_pass(
    client: anthropic.AsyncAnthropic,
) -> None:
    for model, max_tokens in (("claude-sonnet-4-5", 64_000), ("my-local-model", 10_000_000)):
        reply = await client.messages.create(
            model=model,
            max_tokens=max_tokens,
            messages=[{"role": "user", "content": "hi"}],
            timeout=30,
        )
        assert reply.content[0].type == "text"


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ([tool("ssh.mem_ssh")], f"tools.0.custom.name: {PATTERN}"),
        ([tool("ok"), tool("has space")], f"tools.1.custom.name: {PATTERN}"),
        ([tool("x" * 129)], f"tools.0.custom.name: {PATTERN}"),
        ([{"name": "no_schema"}], "tools.0.custom.input_schema: Field required"),
        (
            [{"name": "untyped", "input_schema": {"properties": {}}}],
            "tools.0.custom.input_schema.type: Field required",
        ),
        ([tool("twice"), tool("twice")], "tools: Tool names must be unique."),
        (
            [tool("web_search"), {"type": "web_search_20250305", "name": "web_search"}],
            "tools: Tool names must be unique.",
        ),
    ],
)
async def test_tool_definitions_the_real_api_refuses(
    client: anthropic.AsyncAnthropic, tools: list[dict[str, Any]], message: str
) -> None:
    call = client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        tools=tools,  # type: ignore[arg-type]
    )
    assert await rejected(call) == (400, "invalid_request_error", message)


async def test_valid_tool_names_and_server_tools_pass(client: anthropic.AsyncAnthropic) -> None:
    tools = [tool("mem_ssh"), tool("Mem-SSH_2"), tool("x" * 128)]
    tools.append({"type": "web_search_20250305", "name": "web_search"})
    reply = await client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        tools=tools,  # type: ignore[arg-type]
    )
    assert reply.stop_reason == "end_turn"


@pytest.mark.parametrize(
    ("version", "status", "message"),
    [
        ("2023-06-01", 200, ""),
        ("2023-01-01", 200, ""),
        ("2026-10-21", 200, ""),
        ("2023-10-01", 400, 'anthropic-version: "2023-10-01" is not a valid version'),
        (
            "2023-06-01, 2023-06-01",
            400,
            'anthropic-version: "2023-06-01, 2023-06-01" is not a valid version',
        ),
    ],
)
async def test_anthropic_version_values(version: str, status: int, message: str) -> None:
    fake = FakeAnthropic(script())
    transport = httpx2.ASGITransport(app=fake.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://fake") as http:
        answer = await http.post(
            "/v1/messages",
            headers={"x-api-key": "k", "anthropic-version": version},
            json={"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
        )
    assert answer.status_code == status
    if status != 200:
        assert answer.json()["error"] == {"type": "invalid_request_error", "message": message}


async def test_more_than_four_cache_breakpoints(client: anthropic.AsyncAnthropic) -> None:
    marked = {"type": "ephemeral"}
    call = client.messages.create(
        model=MODEL,
        max_tokens=64,
        system=[{"type": "text", "text": f"s{i}", "cache_control": marked} for i in range(2)],
        tools=[tool("t1", cache_control=marked)],  # type: ignore[list-item]
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "a", "cache_control": marked},
                    {"type": "text", "text": "b", "cache_control": marked},
                ],
            }
        ],
    )
    assert await rejected(call) == (
        400,
        "invalid_request_error",
        "A maximum of 4 blocks with cache_control may be provided. Found 5.",
    )


async def test_the_context_window_is_the_counted_prompt_and_a_script_sets_it() -> None:
    fake = FakeAnthropic(script(limits={MODEL: ModelLimits(context_window=50)}))
    async with fake.async_client(max_retries=0) as client:
        small = [{"role": "user", "content": "a" * 100}]
        counted = await client.messages.count_tokens(model=MODEL, messages=small)  # type: ignore[arg-type]
        reply = await client.messages.create(model=MODEL, max_tokens=5, messages=small)  # type: ignore[arg-type]
        assert reply.usage.input_tokens == counted.input_tokens <= 50
        big = [{"role": "user", "content": "a" * 400}]
        counted = await client.messages.count_tokens(model=MODEL, messages=big)  # type: ignore[arg-type]
        assert counted.input_tokens > 50
        call = client.messages.create(model=MODEL, max_tokens=5, messages=big)  # type: ignore[arg-type]
        assert await rejected(call) == (
            400,
            "invalid_request_error",
            f"prompt is too long: {counted.input_tokens} tokens > 50 maximum",
        )
    assert fake.journal.records[-1].verdict == "ok"
    assert fake.journal.records[-1].error == {
        "type": "invalid_request_error",
        "message": f"prompt is too long: {counted.input_tokens} tokens > 50 maximum",
    }


async def test_default_window_is_the_models(client: anthropic.AsyncAnthropic) -> None:
    huge = "a " * 420_000  # ~ 210k tokens: over a 200k window, under a 1M one
    messages = [{"role": "user", "content": huge}]
    ok = await client.messages.create(model=MODEL, max_tokens=5, messages=messages)  # type: ignore[arg-type]
    assert ok.usage.input_tokens > 200_000
    call = client.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=messages)  # type: ignore[arg-type]
    status, kind, message = await rejected(call)
    assert (status, kind) == (400, "invalid_request_error")
    assert message == f"prompt is too long: {ok.usage.input_tokens} tokens > 200000 maximum"


async def test_context_management_needs_its_beta(client: anthropic.AsyncAnthropic) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    }
    call = client.post("/v1/messages", body=body, cast_to=object)
    assert await rejected(call) == (
        400,
        "invalid_request_error",
        "context_management: Extra inputs are not permitted",
    )
    answer = await client.post(
        "/v1/messages",
        body=body,
        cast_to=object,
        options={"headers": {"anthropic-beta": "context-management-2025-06-27"}},
    )
    assert isinstance(answer, dict)
    assert answer["context_management"] == {"applied_edits": []}


async def test_system_role_messages_need_the_per_turn_beta(
    client: anthropic.AsyncAnthropic,
) -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "answer briefly", "output_config": {"effort": "low"}},
        {"role": "user", "content": "again"},
    ]
    body = {"model": MODEL, "max_tokens": 64, "messages": messages}
    call = client.post("/v1/messages", body=body, cast_to=object)
    assert await rejected(call) == (
        400,
        "invalid_request_error",
        "messages.1.role: Input should be 'user' or 'assistant'",
    )
    answer = await client.beta.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=messages,  # type: ignore[arg-type]
        betas=["per-turn-control-2026-07-01"],
    )
    assert answer.content[0].type == "text"


async def test_adaptive_thinking_and_effort_need_no_beta(client: anthropic.AsyncAnthropic) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "medium"},
    }
    answer = await client.post("/v1/messages", body=body, cast_to=object)
    assert isinstance(answer, dict)
    assert answer["content"] == [{"type": "text", "text": "ok"}]
    bad = dict(body, output_config={"effort": "extreme"})
    status, _, message = await rejected(client.post("/v1/messages", body=bad, cast_to=object))
    assert (status, message) == (
        400,
        "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'",
    )
