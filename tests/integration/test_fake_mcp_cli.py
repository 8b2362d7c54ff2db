"""``harness fake-mcp``: bad input, HTTP mode, exit codes, clean shutdown on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client, MCPError
from opentelemetry.sdk.trace import TracerProvider

from harness.telemetry.otlp_json import read_trace_file
from harness.telemetry.semconv import META_CONTEXT_ID

pytestmark = pytest.mark.integration

TIMEOUT = 10.0
HARNESS = [sys.executable, "-m", "harness", "fake-mcp"]
# A bound against a hang, not a speed target: a loaded machine takes seconds to start a server.
HANG_GUARD = 60.0


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HARNESS, *args], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def test_unknown_server_name_is_exit_2_without_traceback() -> None:
    done = run_cli("sshh")
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    assert "unknown fake MCP server 'sshh'" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_malformed_script_is_exit_2_naming_file_tool_and_field(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text("tools:\n  mem_ssh:\n    default: {latency: fast}\n", encoding="utf-8")
    done = run_cli("ssh", "--script", str(script))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    for part in ("bad.yaml:3", "tool 'mem_ssh'", "tools.mem_ssh.default.latency", "number"):
        assert part in done.stderr
    assert "fast" not in done.stderr  # a script may be any file: its values are not echoed


def test_script_naming_a_missing_tool_is_exit_2(tmp_path: Path) -> None:
    script = tmp_path / "wrong.yaml"
    script.write_text("tools:\n  vault_get: {default: {latency: 1}}\n", encoding="utf-8")
    done = run_cli("ssh", "--script", str(script))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "wrong.yaml" in done.stderr
    assert "server 'ssh' has no tool 'vault_get'" in done.stderr


async def read_line(stdout: BufferedByteReceiveStream) -> bytes:
    return await stdout.receive_until(b"\n", 10_000_000)


async def test_http_mode_prints_url_serves_traces_and_stops_on_sigterm(tmp_path: Path) -> None:
    events, spans = tmp_path / "events.jsonl", tmp_path / "spans.jsonl"
    command = [*HARNESS, "chat", "--transport", "http", "--port", "0"]
    command += ["--events", str(events), "--spans", str(spans)]
    async with await anyio.open_process(command, stderr=subprocess.DEVNULL) as process:
        try:
            assert process.stdout is not None
            with anyio.fail_after(TIMEOUT):
                first = (await read_line(BufferedByteReceiveStream(process.stdout))).decode()
            assert first.startswith("listening on http://127.0.0.1:")
            url = first.removeprefix("listening on ")
            assert url.endswith("/mcp")
            assert not url.endswith(":0/mcp")
            tracer = TracerProvider().get_tracer("test")
            async with Client(url) as client:
                with tracer.start_as_current_span("scheduled review") as caller:
                    listed = await client.call_tool(
                        "chat_list_messages",
                        {},
                        read_timeout_seconds=TIMEOUT,
                        meta={META_CONTEXT_ID: "Dahlia"},
                    )
            assert listed.structured_content is not None
            assert listed.structured_content["scope"] == "caller"
            assert listed.structured_content["context_id"] == "Dahlia"
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(TIMEOUT):
                assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
    logged = read_jsonl(events)
    assert logged[-1]["kind"] == "stopped"
    trace_id = f"{caller.get_span_context().trace_id:032x}"
    server = [s for s in read_trace_file(spans) if s["name"] == "tools/call chat_list_messages"]
    assert server[0]["trace_id"] == trace_id
    assert server[0]["service"] == "fake-mcp-chat"


async def send(process: Process, message: dict[str, Any]) -> None:
    assert process.stdin is not None
    await process.stdin.send((json.dumps({"jsonrpc": "2.0", **message}) + "\n").encode())


async def handshake(process: Process) -> BufferedByteReceiveStream:
    assert process.stdout is not None
    stdout = BufferedByteReceiveStream(process.stdout)
    await send(
        process,
        {
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        },
    )
    assert json.loads(await read_line(stdout))["id"] == 1
    await send(process, {"method": "notifications/initialized"})
    return stdout


async def test_stdio_crash_after_n_calls_exits_with_the_scripted_code(tmp_path: Path) -> None:
    script = tmp_path / "crash.yaml"
    script.write_text("crash_after_calls: 1\ncrash_after: {how: exit, code: 3}\n", encoding="utf-8")
    events = tmp_path / "events.jsonl"
    command = [*HARNESS, "traffic", "--script", str(script), "--events", str(events)]
    async with await anyio.open_process(command, stderr=subprocess.DEVNULL) as process:
        try:
            with anyio.fail_after(TIMEOUT):
                stdout = await handshake(process)
                call = {"method": "tools/call", "params": {"name": "traffic_status"}}
                await send(
                    process,
                    {"id": 2, **call, "params": {**call["params"], "arguments": {"route": "a"}}},
                )
                answer = json.loads(await read_line(stdout))
                assert answer["id"] == 2
                assert "result" in answer
                await send(
                    process,
                    {"id": 3, **call, "params": {**call["params"], "arguments": {"route": "b"}}},
                )
                assert await process.wait() == 3
        finally:
            if process.returncode is None:
                process.kill()
    crashed = read_jsonl(events)[-1]
    assert (crashed["kind"], crashed["call_index"], crashed["request_id"]) == ("crashed", 2, "3")


async def test_stdio_sigterm_is_a_clean_exit_with_the_log_flushed(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    command = [*HARNESS, "vault", "--events", str(events)]
    async with await anyio.open_process(command, stderr=subprocess.DEVNULL) as process:
        try:
            with anyio.fail_after(TIMEOUT):
                await handshake(process)
                process.send_signal(signal.SIGTERM)
                assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
    logged = read_jsonl(events)
    assert logged[-1]["kind"] == "stopped"
    assert logged[-1]["detail"] == {"transport": "stdio", "signal": "SIGTERM"}


async def call_cut_off(client: Client) -> None:
    with pytest.raises(MCPError):  # the server stops under it
        await client.call_tool("wait", {})


def has_event(path: Path, **match: Any) -> bool:
    events = read_jsonl(path) if path.exists() else []
    return any(all(e.get(k) == v for k, v in match.items()) for e in events)


async def logged(path: Path, **match: Any) -> None:
    """Return once the event file holds an event with every ``match`` field."""
    while True:
        if has_event(path, **match):
            return
        await anyio.sleep(0.02)


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_sigterm_records_the_calls_in_flight_as_cancelled(
    transport: str, tmp_path: Path
) -> None:
    events, script = tmp_path / "events.jsonl", tmp_path / "script.json"
    script.write_text(json.dumps({"tools": {"wait": {"default": {"hang": True}}}}))
    command = [*HARNESS, "declared", "--script", str(script), "--events", str(events)]
    command += ["--transport", transport]
    async with await anyio.open_process(command, stderr=subprocess.DEVNULL) as process:
        try:
            with anyio.fail_after(HANG_GUARD):
                if transport == "stdio":
                    await handshake(process)
                    call = {"name": "wait", "arguments": {}}
                    await send(process, {"id": 2, "method": "tools/call", "params": call})
                    await logged(events, tool="wait")
                    process.send_signal(signal.SIGTERM)
                    await process.wait()
                else:
                    assert process.stdout is not None
                    line = await read_line(BufferedByteReceiveStream(process.stdout))
                    url = line.decode().strip().removeprefix("listening on ")
                    async with (
                        Client(url, mode="legacy") as client,
                        anyio.create_task_group() as tg,
                    ):
                        tg.start_soon(call_cut_off, client)
                        await logged(events, tool="wait")
                        process.send_signal(signal.SIGTERM)
                        await process.wait()
                        tg.cancel_scope.cancel()
        finally:
            if process.returncode is None:
                process.kill()
    cancelled = [e for e in read_jsonl(events) if e["kind"] == "cancelled"]
    assert [(e["tool"], e["detail"]) for e in cancelled] == [("wait", {"signal": "SIGTERM"})]


@pytest.mark.parametrize(("sdk", "answered"), [("2.x", True), ("1.x", False)])
async def test_after_stdin_closes_only_a_2x_server_answers_the_call_it_cut_off(
    sdk: str, answered: bool, tmp_path: Path
) -> None:
    events, script = tmp_path / "events.jsonl", tmp_path / "script.json"
    script.write_text(json.dumps({"sdk": sdk, "tools": {"wait": {"default": {"hang": True}}}}))
    command = [*HARNESS, "declared", "--script", str(script), "--events", str(events)]
    async with await anyio.open_process(command, stderr=subprocess.DEVNULL) as process:
        try:
            with anyio.fail_after(HANG_GUARD):
                stdout = await handshake(process)
                call = {"name": "wait", "arguments": {}}
                await send(process, {"id": 2, "method": "tools/call", "params": call})
                await logged(events, kind="request", tool="wait")
                assert process.stdin is not None
                await process.stdin.aclose()
                rest = b""
                with contextlib.suppress(anyio.EndOfStream, anyio.IncompleteRead):
                    while True:
                        rest += await stdout.receive()
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
    written = [json.loads(line) for line in rest.splitlines() if line.strip()]
    assert [m.get("id") for m in written] == ([2] if answered else [])
    assert has_event(events, kind="cancelled", tool="wait")
