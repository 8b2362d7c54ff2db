"""Declared fake MCP servers through the real ``mcp.Client`` in legacy mode (the initialize
handshake and a JSON-RPC session, as the reference runtime connects): in memory, over
streamable HTTP in process, and as a stdio subprocess."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.stdio import stdio_client
from mcp_types import (
    CallToolResult,
    CancelledNotification,
    CancelledNotificationParams,
    TextContent,
)

from fake_servers.mcp import EventLog, ServerScript, build_server, serve_http, stdio_parameters
from harness.telemetry.semconv import META_CONTEXT_ID

pytestmark = pytest.mark.integration

# Bounds against a hang, not speed targets: a loaded machine may take seconds to start a server.
TIMEOUT = 60.0
TRANSPORTS = ["memory", "http", "stdio"]

JIRA: dict[str, Any] = {
    "tools": {
        "search_issues": {
            "description": "Search issues with JQL.",
            "input_schema": {
                "properties": {"jql": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["jql"],
            },
            "match": [{"args": {"jql": "slow"}, "then": {"latency": 0.05}}],
            "default": {"result": {"text": "PROJ-1, PROJ-2"}},
        },
        "remember": {
            "store": {"op": "write", "value": "text"},
            "input_schema": {
                "properties": {"context_id": {"type": "string"}, "text": {"type": "string"}},
                "required": ["text"],
            },
        },
        "recall": {"store": "read", "description": "What was remembered in a context."},
    }
}


def text_of(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


@asynccontextmanager
async def connect(
    transport: str, script: dict[str, Any], tmp_path: Path, *, errlog: TextIO | None = None
) -> AsyncIterator[tuple[Client, Any]]:
    """A client of a declared server and a function returning its events (as dicts); the
    server's stderr goes to ``errlog`` (stdio and memory) when given."""
    if transport == "stdio":
        script_file = tmp_path / "script.json"
        script_file.write_text(json.dumps(script))
        events_file = tmp_path / "events.jsonl"

        def read() -> list[dict[str, Any]]:
            lines = events_file.read_text().splitlines() if events_file.exists() else []
            return [json.loads(line) for line in lines]

        params = stdio_parameters("declared", script=script_file, events=events_file)
        served = params if errlog is None else stdio_client(params, errlog=errlog)
        async with Client(served, mode="legacy") as client:
            yield client, read
        return
    fake = build_server(
        "declared",
        script=ServerScript.from_data(script),
        events=EventLog(),
        stderr=None if errlog is None else (lambda data: errlog.write(data.decode())),
    )

    def events() -> list[dict[str, Any]]:
        return [e.to_json() for e in fake.events.events]

    if transport == "http":
        async with serve_http(fake) as url, Client(url, mode="legacy") as client:
            yield client, events
    else:
        async with Client(fake.server, mode="legacy") as client:
            yield client, events


async def wait_event(events: Any, **match: Any) -> dict[str, Any]:
    """The first event with every ``match`` field (``detail_KEY``: a detail entry)."""
    with anyio.fail_after(TIMEOUT):
        while True:
            for event in events():
                detail = event.get("detail", {})
                if all(
                    detail.get(k.removeprefix("detail_")) == v
                    if k.startswith("detail_")
                    else event.get(k) == v
                    for k, v in match.items()
                ):
                    return event  # type: ignore[no-any-return]
            await anyio.sleep(0.01)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_declared_tools_are_listed_validated_and_store_per_context(
    transport: str, tmp_path: Path
) -> None:
    async with connect(transport, JIRA, tmp_path) as (client, events):
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(listed) == {"search_issues", "remember", "recall"}
        assert listed["search_issues"].description == "Search issues with JQL."
        assert listed["search_issues"].input_schema["required"] == ["jql"]

        bad = await client.call_tool("search_issues", {"jql": 5}, read_timeout_seconds=TIMEOUT)
        assert bad.is_error
        assert "'jql'" in text_of(bad)
        missing = await client.call_tool("search_issues", {}, read_timeout_seconds=TIMEOUT)
        assert missing.is_error
        assert "'jql' is a required property" in text_of(missing)
        good = await client.call_tool("search_issues", {"jql": "x"}, read_timeout_seconds=TIMEOUT)
        assert not good.is_error
        assert text_of(good) == "PROJ-1, PROJ-2"

        blog = {META_CONTEXT_ID: "Blog"}
        await client.call_tool("remember", {"text": "canary-blog"}, meta=blog)
        await client.call_tool("remember", {"text": "general note", "context_id": "General"})
        read = await client.call_tool("recall", {}, meta=blog, read_timeout_seconds=TIMEOUT)
        assert json.loads(text_of(read))["items"] == ["canary-blog"]

        write = await wait_event(events, kind="store_write", detail_value="canary-blog")
        assert write["detail"] == {"key": "Blog", "scope": "caller", "value": "canary-blog"}
        assert write["context_id"] == "Blog"
        other = await wait_event(events, kind="store_write", detail_value="general note")
        assert other["detail"]["scope"] == "argument"
        reads = await wait_event(events, kind="store_read")
        assert reads["detail"]["writes"] == [write["seq"]]
        assert reads["detail"]["writers"] == ["Blog"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_ignore_cancel_finishes_the_work_and_late_response_answers_anyway(
    transport: str, tmp_path: Path
) -> None:
    script = {
        "tools": {
            "save": {
                "store": "write",
                "calls": {1: {"latency": 2.0, "ignore_cancel": True}},
            },
            "slow": {"calls": {1: {"latency": 2.0, "late_response": True}}},
        }
    }
    async with connect(transport, script, tmp_path) as (client, events):
        with pytest.raises(MCPError) as timed_out:
            await client.call_tool("save", {"text": "x"}, read_timeout_seconds=0.5)
        assert timed_out.value.error.code == -32001
        finished = await wait_event(events, kind="finished", tool="save")
        assert finished["detail"]["after_cancel"] is True
        await wait_event(events, kind="store_write", tool="save")  # the write landed anyway

        with pytest.raises(MCPError):
            await client.call_tool("slow", {}, read_timeout_seconds=0.5)
        late = await wait_event(events, kind="finished", tool="slow")
        assert late["detail"] == {"after_cancel": True, "late_response": True}
        # The connection survives the late reply.
        again = await client.call_tool("slow", {}, read_timeout_seconds=TIMEOUT)
        assert not again.is_error


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_unknown_id_response_and_serial_requests(transport: str, tmp_path: Path) -> None:
    script = {
        "requests": "serial",
        "tools": {
            "odd": {"default": {"unknown_id_response": True, "result": {"text": "ok"}}},
            "work": {"default": {"latency": 0.2}},
        },
    }
    async with connect(transport, script, tmp_path) as (client, events):
        result = await client.call_tool("odd", {}, read_timeout_seconds=TIMEOUT)
        assert text_of(result) == "ok"
        odd = await wait_event(events, kind="finished", tool="odd")
        assert odd["detail"]["unknown_id_response"] >= 1_000_000

        async with anyio.create_task_group() as tg:
            for n in range(2):
                tg.start_soon(client.call_tool, "work", {"n": n}, None, TIMEOUT)
        done = [e for e in events() if e["kind"] == "finished" and e.get("tool") == "work"]
        assert len(done) == 2
        # One at a time: the second call's 0.2 s of work began after the first one ended.
        first, second = sorted(e["time"] for e in done)
        assert second - first >= 0.2


async def ping_unknown_session(url: str) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.post(
            url,
            headers={"mcp-session-id": "0" * 32, "accept": "application/json"},
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        )


async def test_forget_sessions_answers_old_session_ids_with_404() -> None:
    script = {"tools": {"restart": {"default": {"forget_sessions": True}}}}
    fake = build_server("declared", script=ServerScript.from_data(script))
    async with serve_http(fake) as url:
        async with Client(url, mode="legacy") as client:
            await client.list_tools()  # else the client lists them after the call, and fails
            await client.call_tool("restart", {}, read_timeout_seconds=TIMEOUT)
            forgotten = await fake.events.wait_for(kind="sessions_forgotten")
            assert forgotten.detail == {"sessions": 1}
            with pytest.raises(MCPError):
                await client.call_tool("restart", {}, read_timeout_seconds=TIMEOUT)
        response = await ping_unknown_session(url)
        assert response.status_code == 404
        assert response.json() == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32600, "message": "Session not found"},
        }


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sdk_1x_results_carry_no_result_type(transport: str, tmp_path: Path) -> None:
    script = {"sdk": "1.x", "tools": {"t": {"default": {"result": {"text": "one"}}}}}
    async with connect(transport, script, tmp_path) as (client, _events):
        result = await client.call_tool("t", {}, read_timeout_seconds=TIMEOUT)
        assert text_of(result) == "one"
        assert "result_type" not in result.model_dump(exclude_unset=True)


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_sdk_1x_refuses_discovery_so_an_auto_client_falls_back_to_initialize(
    transport: str, tmp_path: Path
) -> None:
    script = {"sdk": "1.x", "tools": {"t": {"default": {"result": {"text": "one"}}}}}
    if transport == "stdio":
        script_file = tmp_path / "script.json"
        script_file.write_text(json.dumps(script))
        events_file = tmp_path / "events.jsonl"
        params = stdio_parameters("declared", script=script_file, events=events_file)
        async with Client(params) as client:  # auto: probes server/discover first
            result = await client.call_tool("t", {}, read_timeout_seconds=TIMEOUT)
        events = [json.loads(line) for line in events_file.read_text().splitlines()]
    else:
        fake = build_server("declared", script=ServerScript.from_data(script))
        async with serve_http(fake) as url:
            async with Client(url) as client:
                result = await client.call_tool("t", {}, read_timeout_seconds=TIMEOUT)
            gone = await ping_unknown_session(url)
        assert gone.status_code == 404
        assert gone.json()["id"] == "server-error"
        events = [e.to_json() for e in fake.events.events]
    assert text_of(result) == "one"
    methods = [e.get("method") for e in events if e["kind"] == "request"]
    assert methods[0] == "initialize"
    assert "server/discover" not in methods


async def test_a_hung_call_over_http_is_a_silent_event_stream() -> None:
    script = {"tools": {"wait": {"default": {"hang": True}}}}
    fake = build_server("declared", script=ServerScript.from_data(script))
    accept = {"accept": "application/json, text/event-stream"}
    init = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    }
    async with serve_http(fake) as url, httpx2.AsyncClient(timeout=TIMEOUT) as http:
        opened = await http.post(
            url,
            headers=accept,
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init},
        )
        session = {**accept, "mcp-session-id": opened.headers["mcp-session-id"]}
        await http.post(
            url, headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
        )
        call = {"name": "wait", "arguments": {}}
        request = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call}
        received: list[str] = []
        async with http.stream("POST", url, headers=session, json=request) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            await fake.events.wait_for(kind="request", tool="wait")
            with anyio.move_on_after(0.5):
                async for line in response.aiter_lines():
                    received.append(line)
        # Nothing but comments (keep-alive pings) and blank lines: no event, no data.
        assert all(line == "" or line.startswith(":") for line in received), received


async def test_a_declared_tool_floods_stderr_and_crashes_at_its_point(tmp_path: Path) -> None:
    script = {
        "slow_start": 0.1,
        "tools": {"job": {"calls": {1: {"stderr_bytes": 2000}, 2: {"crash": {"how": "sigkill"}}}}},
    }
    async with connect("stdio", script, tmp_path) as (client, events):
        first = await client.call_tool("job", {}, read_timeout_seconds=TIMEOUT)
        assert not first.is_error
        with pytest.raises(MCPError) as crashed:
            await client.call_tool("job", {}, read_timeout_seconds=TIMEOUT)
        assert crashed.value.error.code == -32000
    kinds = [(e["kind"], e.get("call_index")) for e in events() if e.get("tool") == "job"]
    assert kinds == [("request", 1), ("finished", 1), ("request", 2), ("crashed", 2)]
    opened = next(
        e for e in events() if e.get("method") == "initialize" and e["kind"] == "finished"
    )
    assert opened["detail"] == {"slow_start": 0.1}


async def _cancel_answered(client: Client, events: Any) -> dict[str, Any]:
    """Call a tool, then send ``notifications/cancelled`` for the request it answered (the
    cancel and the answer crossed on the wire); the server's cancel notice for it."""
    result = await client.call_tool("lookup", {}, read_timeout_seconds=TIMEOUT)
    assert not result.is_error
    answered = await wait_event(events, kind="finished", tool="lookup")
    notice = CancelledNotification(
        params=CancelledNotificationParams(request_id=int(answered["request_id"]))
    )
    await client.session.send_notification(notice)
    return await wait_event(events, kind="cancel_notice", request_id=answered["request_id"])


@pytest.mark.parametrize("transport", ["memory", "stdio"])
@pytest.mark.parametrize("option", ["ignore", "crash"])
async def test_a_cancel_after_the_answer_is_ignored_or_crashes_the_server(
    transport: str, option: str, tmp_path: Path
) -> None:
    script = {"cancel_after_response": option, "tools": {"lookup": {}}}
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as errlog:
        async with connect(transport, script, tmp_path, errlog=errlog) as (client, events):
            notice = await _cancel_answered(client, events)
            assert notice["detail"] == {"after_response": True}
            if option == "ignore":
                again = await client.call_tool("lookup", {}, read_timeout_seconds=TIMEOUT)
                assert not again.is_error
                assert not [e for e in events() if e["kind"] == "crashed"]
            else:
                crashed = await wait_event(events, kind="crashed")
                assert crashed["request_id"] == notice["request_id"]
                assert crashed["detail"]["cancel_after_response"] is True
                with pytest.raises(MCPError) as closed:
                    await client.call_tool("lookup", {}, read_timeout_seconds=TIMEOUT)
                assert closed.value.error.code == -32000
    said = stderr.read_text()
    if option == "crash":
        assert said.rstrip().endswith("AssertionError: Request already responded to")
    else:
        assert "AssertionError" not in said
