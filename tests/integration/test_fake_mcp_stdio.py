"""Fake MCP servers as stdio subprocesses (``python -m fake_servers.mcp.NAME``), through the
real ``mcp.Client``. Each test spawns one server and checks several behaviours on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
import uvicorn
from mcp import Client, MCPError
from mcp.client.stdio import stdio_client
from mcp_types import TextContent
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fake_servers.mcp import stdio_parameters
from fake_servers.mcp._transports import bind_socket
from harness.telemetry.otlp_json import read_trace_file

pytestmark = pytest.mark.integration

TIMEOUT = 10.0


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def wait_for_line(path: Path, **match: Any) -> dict[str, Any]:
    """Wait (bounded by the caller) until the JSONL file has a record matching ``match``.

    The subprocess has no other channel to signal on, so the file it flushes is polled.
    """
    file = anyio.Path(path)
    while True:
        if await file.exists():
            for line in (await file.read_text(encoding="utf-8")).splitlines():
                record = json.loads(line)
                if all(record.get(k) == v for k, v in match.items()):
                    return dict(record)
        await anyio.sleep(0.02)


SSH_SCRIPT = """
server: ssh
tools:
  mem_ssh:
    calls:
      1: {result: {text: "scripted over stdio"}}
      2: {error: {code: -32050, message: "quota exceeded"}}
      3: {result: {text: "permission denied", is_error: true}}
      4: {hang: true}
    match:
      - args: {command: flood}
        then: {stderr_bytes: 1000000}
      - args: {command: big}
        then: {result: {text: "big:", oversized_bytes: 2000000}}
"""


async def test_scripted_behaviours_over_stdio(tmp_path: Path) -> None:
    script = tmp_path / "ssh.yaml"
    script.write_text(SSH_SCRIPT, encoding="utf-8")
    events, spans = tmp_path / "events.jsonl", tmp_path / "spans.jsonl"
    params = stdio_parameters("ssh", script=script, events=events, spans=spans)
    args: dict[str, Any] = {"host": "nas01", "command": "uptime"}
    tracer = TracerProvider().get_tracer("test")
    # The client drains the server's stderr into a file: a 1 MB flood (far above a pipe
    # buffer) must not stall the server.
    with (tmp_path / "stderr.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            with tracer.start_as_current_span("caller") as caller:
                first = await client.call_tool("mem_ssh", args, read_timeout_seconds=TIMEOUT)
            block = first.content[0]
            assert isinstance(block, TextContent)
            assert block.text == "scripted over stdio"

            with pytest.raises(MCPError) as error:
                await client.call_tool("mem_ssh", args, read_timeout_seconds=TIMEOUT)
            assert (error.value.error.code, error.value.error.message) == (-32050, "quota exceeded")

            failed = await client.call_tool("mem_ssh", args, read_timeout_seconds=TIMEOUT)
            assert failed.is_error

            with pytest.raises(MCPError) as timeout:
                await client.call_tool("mem_ssh", args, read_timeout_seconds=0.3)
            assert timeout.value.error.code == -32001
            with anyio.fail_after(TIMEOUT):
                cancelled = await wait_for_line(events, kind="cancelled", tool="mem_ssh")
            assert cancelled["call_index"] == 4

            flood = await client.call_tool(
                "mem_ssh", {"host": "h", "command": "flood"}, read_timeout_seconds=TIMEOUT
            )
            assert not flood.is_error

            big = await client.call_tool(
                "mem_ssh", {"host": "h", "command": "big"}, read_timeout_seconds=TIMEOUT
            )
            big_block = big.content[0]
            assert isinstance(big_block, TextContent)
            assert len(big_block.text) == 2_000_004
    assert (tmp_path / "stderr.log").stat().st_size >= 1_000_000

    logged = read_jsonl(events)
    assert logged[0]["kind"] == "started"
    # stdin EOF ended the server on its own (no signal needed).
    assert logged[-1]["kind"] == "stopped"
    assert logged[-1]["detail"] == {"transport": "stdio"}
    calls = [(e["kind"], e["call_index"]) for e in logged if e.get("tool") == "mem_ssh"]
    assert calls[:8] == [
        ("request", 1), ("finished", 1),
        ("request", 2), ("errored", 2),
        ("request", 3), ("errored", 3),
        ("request", 4), ("cancelled", 4),
    ]  # fmt: skip

    trace_id = f"{caller.get_span_context().trace_id:032x}"
    server_span = next(s for s in read_trace_file(spans) if s["name"] == "tools/call mem_ssh")
    assert server_span["trace_id"] == trace_id
    assert server_span["parent_id"] is not None
    assert server_span["kind"] == 2  # SERVER
    assert server_span["service"] == "fake-mcp-ssh"


CHAT_CRASH_SCRIPT = """
slow_start: 0.2
tools:
  chat_list_messages:
    default: {hang: true}
  chat_post_message:
    default: {latency: 0.05, crash: {how: sigkill}}
"""


async def test_self_sigkill_mid_call_fails_every_in_flight_call(tmp_path: Path) -> None:
    script = tmp_path / "chat.yaml"
    script.write_text(CHAT_CRASH_SCRIPT, encoding="utf-8")
    events = tmp_path / "events.jsonl"
    codes: list[int] = []

    async def in_flight(client: Client, tool: str, args: dict[str, Any]) -> None:
        with pytest.raises(MCPError) as caught:
            await client.call_tool(tool, args, read_timeout_seconds=TIMEOUT)
        codes.append(caught.value.error.code)

    params = stdio_parameters("chat", script=script, events=events)
    async with Client(params, mode="legacy") as client:
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(in_flight, client, "chat_list_messages", {})
                tg.start_soon(in_flight, client, "chat_list_messages", {"context_id": "all"})
                await wait_for_line(events, kind="request", tool="chat_list_messages", call_index=2)
                tg.start_soon(
                    in_flight, client, "chat_post_message", {"context_id": "Blog", "text": "x"}
                )
        with pytest.raises(MCPError) as later:
            await client.call_tool("chat_list_messages", {}, read_timeout_seconds=TIMEOUT)
    assert codes == [-32000, -32000, -32000]
    assert later.value.error.code == -32000
    logged = read_jsonl(events)
    assert logged[-1]["kind"] == "crashed"
    assert logged[-1]["detail"] == {"how": "sigkill", "code": 1}
    initialize = next(e for e in logged if e["kind"] == "finished" and e["method"] == "initialize")
    assert initialize["detail"] == {"slow_start": 0.2}  # the handshake was held


async def test_spans_reach_an_otlp_collector_before_a_self_kill(tmp_path: Path) -> None:
    received: list[bytes] = []
    arrived = anyio.Event()

    async def traces(request: Request) -> Response:
        received.append(await request.body())
        arrived.set()
        return Response(status_code=200)

    app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    sock = bind_socket("127.0.0.1", 0)
    collector = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    script = tmp_path / "traffic.yaml"
    script.write_text("crash_after_calls: 1\ncrash_after: {how: sigkill}\n", encoding="utf-8")
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sock.getsockname()[1]}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }
    params = stdio_parameters("traffic", script=script, env=env)
    tracer = TracerProvider().get_tracer("test")
    async with anyio.create_task_group() as tg:
        tg.start_soon(collector.serve, [sock])
        try:
            async with Client(params, mode="legacy") as client:
                with tracer.start_as_current_span("caller") as caller:
                    await client.call_tool(
                        "traffic_status", {"route": "a"}, read_timeout_seconds=TIMEOUT
                    )
                with pytest.raises(MCPError):
                    await client.call_tool(
                        "traffic_status", {"route": "b"}, read_timeout_seconds=TIMEOUT
                    )
            with anyio.fail_after(TIMEOUT):
                await arrived.wait()
        finally:
            collector.should_exit = True
    sock.close()
    spans = []
    for body in received:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                spans += [
                    (service["service.name"], s.name, s.trace_id.hex()) for s in scope_spans.spans
                ]
    trace_id = f"{caller.get_span_context().trace_id:032x}"
    assert ("fake-mcp-traffic", "tools/call traffic_status", trace_id) in spans
