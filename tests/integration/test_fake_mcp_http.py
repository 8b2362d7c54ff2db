"""Fake MCP servers over streamable HTTP, served in-process by uvicorn on a loopback port."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp_types import TextContent
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fake_servers.mcp import (
    Behaviour,
    Crash,
    ProtocolError,
    ResultSpec,
    ServerScript,
    ToolScript,
    build_server,
    serve_http,
)
from harness.telemetry.semconv import META_CONTEXT_ID

pytestmark = pytest.mark.integration

TIMEOUT = 5.0


class RecordingClock:
    def __init__(self) -> None:
        self.time = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds
        await anyio.lowlevel.checkpoint()


async def test_scripted_behaviours_over_http() -> None:
    clock = RecordingClock()
    tool = ToolScript(
        calls={
            1: Behaviour(latency=12.5, result=ResultSpec(text="scripted")),
            2: Behaviour(result=ResultSpec(text="nope", is_error=True)),
            3: Behaviour(error=ProtocolError(code=-32050, message="quota")),
            4: Behaviour(hang=True),
        }
    )
    fake = build_server(
        "ssh", script=ServerScript(slow_start=3.0, tools={"mem_ssh": tool}), clock=clock
    )
    args: dict[str, Any] = {"host": "h", "command": "c"}
    async with serve_http(fake) as url:
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/mcp")
        assert not url.endswith(":0/mcp")
        async with Client(url, mode="legacy") as client:
            first = await client.call_tool("mem_ssh", args, read_timeout_seconds=TIMEOUT)
            block = first.content[0]
            assert isinstance(block, TextContent)
            assert block.text == "scripted"
            second = await client.call_tool("mem_ssh", args, read_timeout_seconds=TIMEOUT)
            assert second.is_error
            with pytest.raises(MCPError) as error:
                await client.call_tool("mem_ssh", args, read_timeout_seconds=TIMEOUT)
            assert error.value.error.code == -32050
            with pytest.raises(MCPError) as timeout:
                await client.call_tool("mem_ssh", args, read_timeout_seconds=0.2)
            assert timeout.value.error.code == -32001
            with anyio.fail_after(TIMEOUT):
                cancelled = await fake.events.wait_for(kind="cancelled", tool="mem_ssh")
            assert cancelled.call_index == 4
    assert clock.sleeps == [3.0, 12.5]  # slow start, then the first call's latency
    kinds = [e.kind for e in fake.events.events]
    assert kinds[0] == "started"
    assert kinds[-1] == "stopped"


async def test_chat_scope_and_trace_continuity_over_http() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fake = build_server("chat", tracer_provider=provider)
    async with serve_http(fake) as url, Client(url) as client:
        with provider.get_tracer("test").start_as_current_span("review") as parent:
            own = await client.call_tool(
                "chat_list_messages",
                {},
                read_timeout_seconds=TIMEOUT,
                meta={META_CONTEXT_ID: "Blog"},
            )
        everything = await client.call_tool(
            "chat_list_messages",
            {"context_id": "all"},
            read_timeout_seconds=TIMEOUT,
            meta={META_CONTEXT_ID: "Blog"},
        )
    assert own.structured_content is not None
    assert everything.structured_content is not None
    assert own.structured_content["scope"] == "caller"
    assert {m["context_id"] for m in own.structured_content["messages"]} == {"Blog"}
    contexts = {m["context_id"] for m in everything.structured_content["messages"]}
    assert contexts == {"General", "Blog", "Dahlia"}
    server_spans = [
        s for s in exporter.get_finished_spans() if s.name == "tools/call chat_list_messages"
    ]
    assert server_spans[0].context.trace_id == parent.get_span_context().trace_id
    assert server_spans[0].parent is not None
    assert fake.events.find(kind="request", tool="chat_list_messages")[0].context_id == "Blog"


async def test_crash_drops_the_connection_and_stops_listening() -> None:
    script = ServerScript(tools={"traffic_status": ToolScript(calls={2: Behaviour(crash=Crash())})})
    fake = build_server("traffic", script=script)
    async with serve_http(fake) as url:
        async with Client(url, mode="legacy") as client:
            await client.call_tool("traffic_status", {"route": "a"}, read_timeout_seconds=TIMEOUT)
            with pytest.raises(MCPError) as dropped:
                await client.call_tool(
                    "traffic_status", {"route": "b"}, read_timeout_seconds=TIMEOUT
                )
            assert dropped.value.error.code == -32000
        with anyio.fail_after(TIMEOUT):
            await fake.events.wait_for(kind="stopped")
        with pytest.raises(httpx2.ConnectError):
            async with httpx2.AsyncClient() as http:
                await http.get(url)
    assert fake.events.find(kind="crashed")[0].call_index == 2
