"""HTTP-level behaviour of the fake API: auth, routes, body limits, journal and telemetry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fake_servers.anthropic import MAX_BODY_BYTES, Agent, FakeAnthropic, Journal, ModelScript, Turn
from harness.telemetry import semconv
from harness.telemetry.providers import build_tracer_provider

HEADERS = {"x-api-key": "sk-secret-value", "anthropic-version": "2023-06-01"}
BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 5,
    "messages": [{"role": "user", "content": "hi there"}],
}


def script() -> ModelScript:
    return ModelScript(agents={"a": Agent(turns=[Turn(text="hello back")], repeat=True)})


@pytest.fixture
async def http() -> AsyncIterator[tuple[FakeAnthropic, httpx2.AsyncClient]]:
    fake = FakeAnthropic(script())
    transport = httpx2.ASGITransport(app=fake.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://fake") as client:
        yield fake, client


def assert_error(response: httpx2.Response, status: int, error_type: str, message: str) -> None:
    assert response.status_code == status
    payload = response.json()
    assert payload == {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": response.headers["request-id"],
    }
    assert payload["request_id"].startswith("req_")


@pytest.mark.parametrize(
    ("method", "path", "headers", "content", "status", "error_type", "message"),
    [
        (
            "POST",
            "/v1/messages",
            {"anthropic-version": "2023-06-01"},
            json.dumps(BODY),
            401,
            "authentication_error",
            "x-api-key header is required",
        ),
        (
            "POST",
            "/v1/messages",
            {**HEADERS, "x-api-key": ""},
            json.dumps(BODY),
            401,
            "authentication_error",
            "x-api-key header is required",
        ),
        (
            "POST",
            "/v1/messages",
            {"x-api-key": "k"},
            json.dumps(BODY),
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        ),
        (
            "POST",
            "/v1/messages",
            {**HEADERS, "content-type": "text/plain"},
            json.dumps(BODY),
            400,
            "invalid_request_error",
            "Invalid content type: text/plain. Expected application/json",
        ),
        (
            "POST",
            "/v1/messages",
            HEADERS,
            "{not json",
            400,
            "invalid_request_error",
            "The request body is not valid JSON: Expecting property name enclosed "
            "in double quotes: line 1 column 2 (char 1)",
        ),
        (
            "POST",
            "/v1/messages",
            HEADERS,
            "[1, 2]",
            400,
            "invalid_request_error",
            "Input should be a valid dictionary",
        ),
        ("GET", "/v1/nothing", HEADERS, None, 404, "not_found_error", "Not Found"),
        ("GET", "/v1/messages", HEADERS, None, 405, "invalid_request_error", "Method Not Allowed"),
    ],
)
async def test_http_errors_use_the_real_envelope(
    http: tuple[FakeAnthropic, httpx2.AsyncClient],
    method: str,
    path: str,
    headers: dict[str, str],
    content: str | None,
    status: int,
    error_type: str,
    message: str,
) -> None:
    _, client = http
    if content is not None:
        headers = {"content-type": "application/json", **headers}
    response = await client.request(method, path, headers=headers, content=content)
    assert_error(response, status, error_type, message)


async def test_bearer_auth_is_accepted(http: tuple[FakeAnthropic, httpx2.AsyncClient]) -> None:
    _, client = http
    headers = {"authorization": "Bearer tok", "anthropic-version": "2023-06-01"}
    response = await client.post("/v1/messages", headers=headers, json=BODY)
    assert response.status_code == 200
    assert response.json()["content"] == [{"type": "text", "text": "hello back"}]
    assert response.headers["request-id"].startswith("req_")


async def test_body_over_32_mb_is_413_by_header_and_by_stream(
    http: tuple[FakeAnthropic, httpx2.AsyncClient],
) -> None:
    fake, client = http
    declared = await client.post(
        "/v1/messages",
        headers={**HEADERS, "content-length": str(MAX_BODY_BYTES + 1)},
        content=b"{}",
    )
    assert_error(declared, 413, "request_too_large", "Request exceeds the maximum size")
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        piece = b" " * (1024 * 1024)
        for _ in range(40):
            sent.append(len(piece))
            yield piece

    streamed = await client.post("/v1/messages", headers=HEADERS, content=chunks())
    assert_error(streamed, 413, "request_too_large", "Request exceeds the maximum size")
    # The app stopped reading right after the limit instead of buffering everything.
    assert sum(sent) <= MAX_BODY_BYTES + 2 * 1024 * 1024
    assert [r.status for r in fake.journal.records] == [413, 413]


async def test_rejected_requests_are_journaled_with_a_safe_summary(
    http: tuple[FakeAnthropic, httpx2.AsyncClient],
) -> None:
    fake, client = http
    bad = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": ""}],
    }
    response = await client.post("/v1/messages", headers=HEADERS, json=bad)
    assert response.status_code == 400
    record = fake.journal.records[0]
    assert record.verdict == {
        "type": "invalid_request_error",
        "message": "messages.0: all messages must have non-empty content except for the "
        "optional final assistant message",
    }
    # Roles and block types, never the content.
    assert record.request == {
        "model": "claude-sonnet-4-6",
        "message_count": 1,
        "messages": [{"role": "user", "blocks": [{"type": "text"}]}],
    }
    assert record.agent is None
    assert record.response is None


async def test_a_refused_request_names_its_agent_and_its_turns_without_content(
    http: tuple[FakeAnthropic, httpx2.AsyncClient],
) -> None:
    fake, client = http
    secret = "do not journal me"
    refused = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "metadata": {"user_id": "agent:a"},
        "messages": [
            {"role": "user", "content": secret},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "mem_ssh", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": secret}],
            },
        ],
    }
    response = await client.post("/v1/messages", headers=HEADERS, json=refused)
    assert response.status_code == 400
    assert "Expected `thinking` or `redacted_thinking`" in response.json()["error"]["message"]
    record = fake.journal.records[0]
    assert record.agent == "a"
    assert record.request["thinking"] == "enabled"
    assert record.request["messages"][1] == {
        "role": "assistant",
        "blocks": [{"type": "tool_use", "id": "toolu_1", "name": "mem_ssh"}],
    }
    assert secret not in json.dumps(record.to_json())
    # Messages that are not messages are left out, not guessed at.
    garbage = {"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": [1, {"x": 2}]}
    assert (await client.post("/v1/messages", headers=HEADERS, json=garbage)).status_code == 400
    assert "messages" not in fake.journal.records[1].to_json()["request"]


async def test_journal_summarises_without_content_or_secrets(tmp_path: Path) -> None:
    fake = FakeAnthropic(script())
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with fake.async_client(max_retries=0, api_key="sk-secret-value") as client:
        await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=5,
            system="classified system prompt",
            messages=[{"role": "user", "content": "private words"}],
            extra_headers={"traceparent": traceparent},
        )
    record = fake.journal.records[0]
    assert record.traceparent == traceparent
    assert record.request["messages"] == [{"role": "user", "blocks": [{"type": "text"}]}]
    assert record.response is not None
    assert record.response["stop_reason"] == "end_turn"
    out = tmp_path / "journal.jsonl"
    fake.journal.write_jsonl(out)
    text = out.read_text()
    assert "private words" not in text
    assert "classified" not in text
    assert "sk-secret-value" not in text
    assert json.loads(text.splitlines()[0])["request_id"] == record.request_id


async def test_journal_captures_content_when_asked(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror.jsonl"
    journal = Journal(capture_content=True, path=mirror)
    fake = FakeAnthropic(script(), journal=journal)
    async with fake.async_client(max_retries=0) as client:
        await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=5,
            messages=[{"role": "user", "content": "private words"}],
        )
    journal.close()
    line = json.loads(mirror.read_text())
    assert line["request"]["messages"] == [{"role": "user", "content": "private words"}]
    assert line["seq"] == 1
    assert line["agent"] == "a"
    assert line["turn"] == 0


async def test_server_span_is_parented_from_traceparent() -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(
        semconv.SERVICE_FAKE_ANTHROPIC, processors=[SimpleSpanProcessor(exporter)]
    )
    fake = FakeAnthropic(script(), tracer_provider=provider)
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    parent_id = "b7ad6b7169203331"
    headers: dict[str, Any] = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
    async with fake.async_client(max_retries=0) as client:
        await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=5,
            messages=[{"role": "user", "content": "x"}],
            extra_headers=headers,
        )
        with pytest.raises(anthropic.BadRequestError):
            await client.messages.create(
                model="claude-sonnet-4-6", max_tokens=5, messages=[], extra_headers=headers
            )
    ok, bad = exporter.get_finished_spans()
    assert ok.name == "POST /v1/messages"
    assert ok.kind == trace.SpanKind.SERVER
    assert ok.parent is not None
    assert f"{ok.parent.span_id:016x}" == parent_id
    assert f"{ok.context.trace_id:032x}" == trace_id
    assert ok.resource.attributes[semconv.SERVICE_NAME] == "fake-anthropic"
    assert dict(ok.attributes or {}) == {
        semconv.HTTP_REQUEST_METHOD: "POST",
        semconv.URL_PATH: "/v1/messages",
        semconv.URL_SCHEME: "http",
        semconv.HTTP_ROUTE: "/v1/messages",
        semconv.HTTP_RESPONSE_STATUS_CODE: 200,
        semconv.HARNESS_FAKE_AGENT: "a",
        semconv.HARNESS_FAKE_TURN: 0,
    }
    assert bad.attributes is not None
    assert bad.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 400
    assert bad.attributes[semconv.ERROR_TYPE] == "invalid_request_error"
    provider.shutdown()


async def test_without_traceparent_the_server_span_is_a_root_even_in_process() -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(
        semconv.SERVICE_FAKE_ANTHROPIC, processors=[SimpleSpanProcessor(exporter)]
    )
    fake = FakeAnthropic(script(), tracer_provider=provider)
    transport = httpx2.ASGITransport(app=fake.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://fake") as client:
        # The app runs in this task, where a caller's span is current; no header names it.
        with provider.get_tracer("caller").start_as_current_span("caller"):
            response = await client.post("/v1/messages", headers=HEADERS, json=BODY)
    assert response.status_code == 200
    server = next(s for s in exporter.get_finished_spans() if s.name == "POST /v1/messages")
    assert server.parent is None
    provider.shutdown()
