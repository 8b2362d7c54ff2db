"""Validation parity of the fake Messages API, through the real ``anthropic`` SDK.

Each row is a conversation shape sent as JSON and, where it matters, as a stream; the fake must
answer exactly what the real API answers: status, SDK exception class, error type and message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import pytest

from fake_servers.anthropic import Agent, FakeAnthropic, ModelScript, Turn

MODEL = "claude-sonnet-4-6"
MISSING = (
    "messages.{n}: `tool_use` ids were found without `tool_result` blocks immediately after: "
    "{ids}. Each `tool_use` block must have a corresponding `tool_result` block in the next "
    "message."
)
UNEXPECTED = (
    "messages.{n}.content.{k}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. "
    "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
)
NON_EMPTY = (
    "messages.{n}: all messages must have non-empty content except for the optional final "
    "assistant message"
)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def tool_use(tool_id: str, name: str = "lookup") -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": {"q": 1}}


def tool_result(tool_id: str, text: str = "done") -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": text}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


@dataclass(frozen=True)
class Shape:
    name: str
    body: dict[str, Any]
    status: int = 200
    message: str = ""
    exc: type[Exception] | None = anthropic.BadRequestError
    streams: bool = True
    endpoint: str = "/v1/messages"
    extra: dict[str, Any] = field(default_factory=dict)


def body(messages: Any, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 64, "messages": messages, **extra}


SHAPES = [
    Shape("plain text", body([user("hello")])),
    Shape("text blocks", body([user([text("a"), text("b")])])),
    Shape(
        "tool round trip",
        body([user("go"), assistant([tool_use("toolu_1")]), user([tool_result("toolu_1")])]),
    ),
    Shape(
        "parallel tools answered, text after results",
        body(
            [
                user("go"),
                assistant([text("two calls"), tool_use("toolu_1"), tool_use("toolu_2")]),
                user([tool_result("toolu_2"), tool_result("toolu_1"), text("and?")]),
            ]
        ),
    ),
    Shape("consecutive user messages merge", body([user("a"), user("b")])),
    Shape(
        "consecutive assistant messages merge",
        body(
            [
                user("go"),
                assistant("thinking"),
                assistant([tool_use("toolu_1")]),
                user([tool_result("toolu_1")]),
            ]
        ),
    ),
    Shape("final assistant may be empty", body([user("hi"), assistant([])]), streams=False),
    Shape("system as blocks", body([user("hi")], system=[text("be brief")])),
    Shape(
        "orphan tool_result first message",
        body([user([tool_result("toolu_x")])]),
        400,
        UNEXPECTED.format(n=0, k=0, id="toolu_x"),
    ),
    Shape(
        "compaction summarized the tool_use away",
        body(
            [
                user("<compaction-summary>earlier work</compaction-summary>"),
                user([tool_result("toolu_9")]),
            ]
        ),
        400,
        UNEXPECTED.format(n=1, k=0, id="toolu_9"),
    ),
    Shape(
        "tool_result answers another id",
        body([user("go"), assistant([tool_use("toolu_1")]), user([tool_result("toolu_2")])]),
        400,
        MISSING.format(n=1, ids="toolu_1"),
    ),
    Shape(
        "tool_use at the end without results",
        body([user("go"), assistant([tool_use("toolu_1")])]),
        400,
        MISSING.format(n=1, ids="toolu_1"),
    ),
    Shape(
        "tool_result after text",
        body(
            [
                user("go"),
                assistant([tool_use("toolu_1")]),
                user([text("x"), tool_result("toolu_1")]),
            ]
        ),
        400,
        MISSING.format(n=1, ids="toolu_1"),
    ),
    Shape(
        "two tool_use ids unanswered",
        body(
            [
                user("go"),
                assistant([tool_use("toolu_a"), tool_use("toolu_b")]),
                user("never mind"),
            ]
        ),
        400,
        MISSING.format(n=1, ids="toolu_a, toolu_b"),
    ),
    Shape(
        "one of two parallel calls answered",
        body(
            [
                user("go"),
                assistant([tool_use("toolu_a"), tool_use("toolu_b")]),
                user([tool_result("toolu_a")]),
            ]
        ),
        400,
        MISSING.format(n=1, ids="toolu_b"),
    ),
    Shape(
        "tool_result with an unknown id among valid ones",
        body(
            [
                user("go"),
                assistant([tool_use("toolu_a")]),
                user([tool_result("toolu_a"), tool_result("toolu_zz")]),
            ]
        ),
        400,
        UNEXPECTED.format(n=2, k=1, id="toolu_zz"),
    ),
    Shape("empty content list", body([user([])]), 400, NON_EMPTY.format(n=0)),
    Shape("empty content string", body([user("")]), 400, NON_EMPTY.format(n=0)),
    Shape(
        "empty assistant in the middle",
        body([user("a"), assistant(""), user("b")]),
        400,
        NON_EMPTY.format(n=1),
    ),
    Shape(
        "empty text block",
        body([user([text("")])]),
        400,
        "messages: text content blocks must be non-empty",
    ),
    Shape(
        "whitespace text block",
        body([user([text("  \n ")])]),
        400,
        "messages: text content blocks must contain non-whitespace text",
    ),
    Shape(
        "first message from assistant",
        body([assistant("hi"), user("yo")]),
        400,
        'messages: first message must use the "user" role',
    ),
    Shape(
        "missing model",
        {"max_tokens": 5, "messages": [user("x")]},
        400,
        "model: Field required",
    ),
    Shape(
        "missing max_tokens",
        {"model": MODEL, "messages": [user("x")]},
        400,
        "max_tokens: Field required",
    ),
    Shape(
        "max_tokens not an integer",
        body([user("x")], max_tokens="many"),
        400,
        "max_tokens: Input should be a valid integer",
    ),
    Shape(
        "max_tokens zero",
        body([user("x")], max_tokens=0),
        400,
        "max_tokens: Input should be greater than or equal to 1",
    ),
    Shape(
        "model not a string",
        body([user("x")], model=5),
        400,
        "model: Input should be a valid string",
    ),
    Shape("missing messages", {"model": MODEL, "max_tokens": 5}, 400, "messages: Field required"),
    Shape("messages not a list", body("hello"), 400, "messages: Input should be a valid list"),
    Shape("no messages", body([]), 400, "messages: at least one message is required"),
    Shape(
        "bad role",
        body([{"role": "system", "content": "x"}]),
        400,
        "messages.0.role: Input should be 'user' or 'assistant'",
    ),
    Shape(
        "content missing",
        body([{"role": "user"}]),
        400,
        "messages.0.content: Field required",
    ),
    Shape(
        "unknown block type",
        body([user([{"type": "banana"}])]),
        400,
        "messages.0.content.0: Input tag 'banana' found using 'type' does not match any of the "
        "expected tags: 'text', 'image', 'document', 'search_result', 'thinking', "
        "'redacted_thinking', 'tool_use', 'tool_result', 'server_tool_use', "
        "'web_search_tool_result'",
    ),
    Shape(
        "tool_use without input",
        body([user("go"), assistant([{"type": "tool_use", "id": "toolu_1", "name": "x"}])]),
        400,
        "messages.1.content.0.input: Field required",
    ),
    Shape(
        "stream not a boolean",
        body([user("x")], stream="yes"),
        400,
        "stream: Input should be a valid boolean",
        streams=False,
    ),
    Shape(
        "unknown model",
        body([user("x")], model="claude-unknown-9"),
        404,
        "model: claude-unknown-9",
        anthropic.NotFoundError,
    ),
    Shape(
        "count_tokens valid without max_tokens",
        {"model": MODEL, "messages": [user("count me")]},
        endpoint="/v1/messages/count_tokens",
        streams=False,
    ),
    Shape(
        "count_tokens validates tool pairing",
        {"model": MODEL, "messages": [user([tool_result("toolu_q")])]},
        400,
        UNEXPECTED.format(n=0, k=0, id="toolu_q"),
        endpoint="/v1/messages/count_tokens",
        streams=False,
    ),
]

CASES = [(shape, False) for shape in SHAPES] + [(s, True) for s in SHAPES if s.streams]


@pytest.fixture
async def client() -> AsyncIterator[anthropic.AsyncAnthropic]:
    script = ModelScript(
        agents={"solo": Agent(turns=[Turn(text="ok")], repeat=True)},
        models=[MODEL],
    )
    async with FakeAnthropic(script).async_client(max_retries=0) as sdk:
        yield sdk


def test_table_is_wide_enough() -> None:
    assert len(SHAPES) >= 25
    assert sum(1 for shape in SHAPES if shape.status != 200) >= 20


@pytest.mark.parametrize(
    ("shape", "stream"), CASES, ids=[f"{s.name}{' [stream]' if st else ''}" for s, st in CASES]
)
async def test_shape(client: anthropic.AsyncAnthropic, shape: Shape, stream: bool) -> None:
    payload = dict(shape.body, stream=True) if stream else shape.body

    async def send() -> Any:
        if stream:
            result = await client.post(
                shape.endpoint,
                body=payload,
                cast_to=anthropic.types.RawMessageStreamEvent,  # type: ignore[arg-type]
                stream=True,
                stream_cls=anthropic.AsyncStream[anthropic.types.RawMessageStreamEvent],
            )
            return [event async for event in result]
        return await client.post(shape.endpoint, body=payload, cast_to=object)

    if shape.status == 200:
        result = await send()
        if stream:
            kinds = [event.type for event in result]
            assert kinds[0] == "message_start"
            assert kinds[-2:] == ["message_delta", "message_stop"]
        elif shape.endpoint.endswith("count_tokens"):
            assert result["input_tokens"] > 0
        else:
            assert result["content"] == [{"type": "text", "text": "ok"}]
        return
    assert shape.exc is not None
    with pytest.raises(shape.exc) as caught:
        await send()
    error = caught.value
    assert isinstance(error, anthropic.APIStatusError)
    assert error.status_code == shape.status
    assert isinstance(error.body, dict)
    assert error.body["type"] == "error"
    assert error.body["error"]["message"] == shape.message
    expected_type = {400: "invalid_request_error", 404: "not_found_error"}[shape.status]
    assert error.body["error"]["type"] == expected_type
    assert error.request_id == error.body["request_id"]
    assert error.request_id is not None
    assert error.request_id.startswith("req_")
