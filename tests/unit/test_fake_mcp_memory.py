"""Fake MCP servers in memory, through the real ``mcp.Client`` (legacy mode: real JSON-RPC
framing over memory streams)."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError
from mcp_types import CallToolResult, ImageContent, TextContent
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fake_servers.mcp import (
    SERVER_NAMES,
    Behaviour,
    Crash,
    EventLog,
    ImageSpec,
    ProtocolError,
    ResultSpec,
    ServerScript,
    ToolScript,
    build_server,
)
from fake_servers.mcp.vault import SECRET_NAMES, secret_value
from harness.chaos_random import ChaosRandom
from harness.errors import ConfigError
from harness.telemetry.semconv import META_CONTEXT_ID

TIMEOUT = 5.0


class RecordingClock:
    """A clock whose sleeps cost nothing and are recorded (stands in for virtual time)."""

    def __init__(self) -> None:
        self.time = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds
        await anyio.lowlevel.checkpoint()


def text_of(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def script_for(tool: str, tool_script: ToolScript, **server: Any) -> ServerScript:
    return ServerScript(tools={tool: tool_script}, **server)


async def call(client: Client, tool: str, args: dict[str, Any], **kw: Any) -> CallToolResult:
    return await client.call_tool(tool, args, read_timeout_seconds=TIMEOUT, **kw)


# -- built-in results -------------------------------------------------------------------------


async def test_every_server_lists_its_tools() -> None:
    expected = {
        "ssh": {"mem_ssh"},
        "vault": {"vault_get", "vault_list"},
        "traffic": {"traffic_status"},
        "cameras": {"frigate_events", "frigate_snapshot"},
        "chat": {"chat_list_messages", "chat_post_message", "chat_search"},
        "declared": set(),  # every tool comes from its script
    }
    assert set(SERVER_NAMES) == set(expected)
    for name in SERVER_NAMES:
        async with Client(build_server(name).server, mode="legacy") as client:
            listed = await client.list_tools()
        assert {tool.name for tool in listed.tools} == expected[name]


def test_unknown_server_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown fake MCP server 'sssh'"):
        build_server("sssh")


async def test_builtin_results_are_deterministic_per_arguments() -> None:
    outputs = []
    for _ in range(2):
        async with Client(build_server("ssh").server, mode="legacy") as client:
            up = await call(client, "mem_ssh", {"host": "nas01", "command": "uptime"})
            other = await call(client, "mem_ssh", {"host": "pi4-b", "command": "uptime"})
            outputs.append((text_of(up), text_of(other)))
    assert outputs[0] == outputs[1]
    assert "load average" in outputs[0][0]
    assert outputs[0][0] != outputs[0][1]


async def test_traffic_and_camera_events_are_structured() -> None:
    async with Client(build_server("traffic").server, mode="legacy") as client:
        status = await call(client, "traffic_status", {"route": "home-office"})
    assert status.structured_content is not None
    assert status.structured_content["route"] == "home-office"
    assert json.loads(text_of(status)) == status.structured_content
    async with Client(build_server("cameras").server, mode="legacy") as client:
        events = await call(client, "frigate_events", {"camera": "front", "since": "2026-11-27"})
    assert events.structured_content is not None
    assert all(e["camera"] == "front" for e in events.structured_content["events"])


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.endswith(b"IEND\xaeB`\x82")
    return width, height


async def test_snapshot_is_png_image_content() -> None:
    async with Client(build_server("cameras").server, mode="legacy") as client:
        first = await call(client, "frigate_snapshot", {"camera": "front"})
        again = await call(client, "frigate_snapshot", {"camera": "front"})
        other = await call(client, "frigate_snapshot", {"camera": "garden"})
    image = first.content[1]
    assert isinstance(image, ImageContent)
    assert image.mime_type == "image/png"
    assert png_size(base64.b64decode(image.data)) == (32, 24)
    assert again.content[1] == image
    assert other.content[1] != image


async def test_vault_values_look_real_and_depend_on_the_seed() -> None:
    values: dict[int, dict[str, str]] = {}
    for seed in (1, 2):
        fake = build_server("vault", rng=ChaosRandom(seed))
        async with Client(fake.server, mode="legacy") as client:
            listed = await call(client, "vault_list", {})
            assert listed.structured_content == {"secrets": list(SECRET_NAMES)}
            values[seed] = {}
            for name in SECRET_NAMES:
                got = await call(client, "vault_get", {"name": name})
                assert got.structured_content is not None
                values[seed][name] = got.structured_content["value"]
            missing = await call(client, "vault_get", {"name": "nope"})
            assert missing.is_error
            assert "no secret named 'nope'" in text_of(missing)
    assert values[1]["github_token"].startswith("ghp_")
    assert len(values[1]["github_token"]) == 40
    assert values[1]["stripe_secret_key"].startswith("sk_live_")
    assert values[1]["llm_api_key"].startswith("sk-live-")
    assert values[1]["aws_access_key_id"].startswith("AKIA")
    assert values[1] == {n: secret_value(ChaosRandom(1), n) for n in SECRET_NAMES}
    assert all(values[1][n] != values[2][n] for n in SECRET_NAMES)


async def test_vault_values_never_reach_events_or_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fake = build_server("vault", rng=ChaosRandom(7), tracer_provider=provider)
    async with Client(fake.server, mode="legacy") as client:
        for name in SECRET_NAMES:
            await call(client, "vault_get", {"name": name})
    secrets = [secret_value(ChaosRandom(7), n) for n in SECRET_NAMES]
    logged = json.dumps([e.to_json() for e in fake.events.events])
    spans = exporter.get_finished_spans()
    assert {s.name for s in spans} >= {"tools/call vault_get"}
    recorded = json.dumps([dict(s.attributes or {}) for s in spans] + [s.name for s in spans])
    recorded += json.dumps([[ev.name, dict(ev.attributes or {})] for s in spans for ev in s.events])
    for secret in secrets:
        assert secret not in logged
        assert secret not in recorded
    assert '"name": "github_token"' in logged  # the name is logged, the value is not


# -- scripted behaviour -------------------------------------------------------------------------


async def test_scripted_results_text_structured_image_error() -> None:
    tool = ToolScript(
        calls={
            1: Behaviour(result=ResultSpec(text="scripted")),
            2: Behaviour(result=ResultSpec(structured={"ok": True})),
            3: Behaviour(result=ResultSpec(image=ImageSpec(width=4, height=3))),
            4: Behaviour(result=ResultSpec(text="permission denied", is_error=True)),
            5: Behaviour(error=ProtocolError(code=-32050, message="quota exceeded")),
        }
    )
    fake = build_server("ssh", script=script_for("mem_ssh", tool))
    args = {"host": "h", "command": "c"}
    async with Client(fake.server, mode="legacy") as client:
        assert text_of(await call(client, "mem_ssh", args)) == "scripted"
        structured = await call(client, "mem_ssh", args)
        assert structured.structured_content == {"ok": True}
        image = (await call(client, "mem_ssh", args)).content[0]
        assert isinstance(image, ImageContent)
        assert png_size(base64.b64decode(image.data)) == (4, 3)
        failed = await call(client, "mem_ssh", args)
        assert failed.is_error
        assert text_of(failed) == "permission denied"
        with pytest.raises(MCPError) as caught:
            await call(client, "mem_ssh", args)
        assert caught.value.error.code == -32050
        assert caught.value.error.message == "quota exceeded"
        # Past the scripted indices: the built-in result.
        assert "ran 'c'" in text_of(await call(client, "mem_ssh", args))
    kinds = [(e.kind, e.call_index) for e in fake.events.find(tool="mem_ssh")]
    assert kinds == [
        ("request", 1), ("finished", 1),
        ("request", 2), ("finished", 2),
        ("request", 3), ("finished", 3),
        ("request", 4), ("errored", 4),
        ("request", 5), ("errored", 5),
        ("request", 6), ("finished", 6),
    ]  # fmt: skip
    assert fake.events.find(kind="errored", call_index=5)[0].detail == {
        "code": -32050,
        "message": "quota exceeded",
    }


async def test_argument_match_and_default() -> None:
    tool = ToolScript(
        default=Behaviour(result=ResultSpec(text="default")),
        match=[
            {"args": {"host": {"regex": "db[0-9]+"}}, "then": {"result": {"text": "db host"}}},  # type: ignore[list-item]
        ],
    )
    fake = build_server("ssh", script=script_for("mem_ssh", tool))
    async with Client(fake.server, mode="legacy") as client:
        assert text_of(await call(client, "mem_ssh", {"host": "db12", "command": "x"})) == "db host"
        assert text_of(await call(client, "mem_ssh", {"host": "web1", "command": "x"})) == "default"


async def test_latency_goes_through_the_injected_clock() -> None:
    clock = RecordingClock()
    tool = ToolScript(default=Behaviour(latency=150.0))
    fake = build_server("traffic", script=script_for("traffic_status", tool), clock=clock)
    async with Client(fake.server, mode="legacy") as client:
        result = await call(client, "traffic_status", {"route": "a"})
    assert result.structured_content is not None  # latency, then the built-in result
    assert clock.sleeps == [150.0]
    assert fake.events.find(kind="finished", tool="traffic_status")[0].duration == 150.0


async def _latencies(latency: dict[str, Any], *, seed: int, calls: int = 4) -> list[float]:
    clock = RecordingClock()
    tool = ToolScript.model_validate({"default": {"latency": latency}})
    fake = build_server(
        "traffic", script=script_for("traffic_status", tool), clock=clock, rng=ChaosRandom(seed)
    )
    async with Client(fake.server, mode="legacy") as client:
        for _ in range(calls):
            await call(client, "traffic_status", {"route": "a"})
    return clock.sleeps


async def test_a_latency_distribution_is_drawn_per_call_from_the_seed() -> None:
    drawn = await _latencies({"uniform": [1, 100]}, seed=3)
    assert len(set(drawn)) == 4
    assert all(1 <= d <= 100 for d in drawn)
    assert await _latencies({"uniform": [1, 100]}, seed=3) == drawn
    assert await _latencies({"uniform": [1, 100]}, seed=4) != drawn
    # A scenario's draw for the place is the first call's; the calls after it draw their own.
    first = await _latencies({"uniform": [1, 100], "first": 7.5}, seed=3)
    assert first[0] == 7.5
    assert first[1:] == drawn[1:]
    # draw: per_run keeps one value for every call.
    once = await _latencies({"uniform": [1, 100], "draw": "per_run"}, seed=3)
    assert once == [drawn[0]] * 4


def test_a_bad_latency_distribution_says_what_is_wrong() -> None:
    for latency, message in [
        ({"uniform": [5, 1]}, "low 5 is above high 1"),
        ({"uniform": [-1, 1]}, "none below 0"),
        ({"uniform": [1, 2], "draw": "always"}, "draw must be one of per_call, per_run"),
    ]:
        with pytest.raises(ValueError, match=message):
            Behaviour.model_validate({"latency": latency})


async def test_slow_start_delays_initialize() -> None:
    clock = RecordingClock()
    fake = build_server("ssh", script=ServerScript(slow_start=30.0), clock=clock)
    async with Client(fake.server, mode="legacy"):
        pass
    assert clock.sleeps == [30.0]
    init = fake.events.find(kind="finished", method="initialize")[0]
    assert init.duration == 30.0
    assert init.detail == {"slow_start": 30.0}


async def test_hang_times_out_with_32001_and_the_server_logs_the_cancellation() -> None:
    fake = build_server(
        "ssh", script=script_for("mem_ssh", ToolScript(calls={1: Behaviour(hang=True)}))
    )
    async with Client(fake.server, mode="legacy") as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool(
                "mem_ssh", {"host": "h", "command": "c"}, read_timeout_seconds=0.2
            )
        assert caught.value.error.code == -32001
        with anyio.fail_after(TIMEOUT):
            cancelled = await fake.events.wait_for(kind="cancelled", tool="mem_ssh")
        assert cancelled.call_index == 1
        # The session stays usable; the next call gets the built-in result.
        assert not (await call(client, "mem_ssh", {"host": "h", "command": "c"})).is_error


async def test_crash_closes_the_connection_for_every_in_flight_call() -> None:
    script = ServerScript(
        tools={
            "chat_list_messages": ToolScript(default=Behaviour(hang=True)),
            "chat_post_message": ToolScript(default=Behaviour(latency=0.0, crash=Crash())),
        }
    )
    fake = build_server("chat", script=script)
    errors: list[int] = []

    async def hanging_call(client: Client) -> None:
        with pytest.raises(MCPError) as caught:
            await call(client, "chat_list_messages", {})
        errors.append(caught.value.error.code)

    async with Client(fake.server, mode="legacy") as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(hanging_call, client)
            tg.start_soon(hanging_call, client)
            with anyio.fail_after(TIMEOUT):
                await fake.events.wait_for(kind="request", tool="chat_list_messages", call_index=2)
            with pytest.raises(MCPError) as crashed:
                await call(client, "chat_post_message", {"context_id": "General", "text": "x"})
            errors.append(crashed.value.error.code)
        with pytest.raises(MCPError) as later:
            await call(client, "chat_list_messages", {})
        errors.append(later.value.error.code)
    assert errors == [-32000, -32000, -32000, -32000]
    assert crashed.value.error.message == "Connection closed"
    kinds = [e.kind for e in fake.events.events]
    assert "crashed" in kinds
    assert kinds[-1] == "stopped"


async def test_crash_after_n_calls() -> None:
    fake = build_server("traffic", script=ServerScript(crash_after_calls=2))
    async with Client(fake.server, mode="legacy") as client:
        await call(client, "traffic_status", {"route": "a"})
        await call(client, "traffic_status", {"route": "b"})
        with pytest.raises(MCPError, match="Connection closed"):
            await call(client, "traffic_status", {"route": "c"})
    # Reconnecting is like a respawn: the server answers again (the crash happened once).
    async with Client(fake.server, mode="legacy") as client:
        assert not (await call(client, "traffic_status", {"route": "d"})).is_error
    assert [e.call_index for e in fake.events.find(kind="crashed")] == [3]


async def test_stderr_flood_goes_to_the_sink_before_the_answer() -> None:
    sink: list[bytes] = []
    tool = ToolScript(default=Behaviour(stderr_bytes=200_000))
    fake = build_server("ssh", script=script_for("mem_ssh", tool), stderr=sink.append)
    async with Client(fake.server, mode="legacy") as client:
        result = await call(client, "mem_ssh", {"host": "h", "command": "c"})
    assert not result.is_error
    assert sum(len(chunk) for chunk in sink) == 200_000


async def test_oversized_result() -> None:
    tool = ToolScript(default=Behaviour(result=ResultSpec(text="big:", oversized_bytes=3_000_000)))
    fake = build_server("ssh", script=script_for("mem_ssh", tool))
    async with Client(fake.server, mode="legacy") as client:
        result = await call(client, "mem_ssh", {"host": "h", "command": "c"})
    text = text_of(result)
    assert text.startswith("big:lorem ipsum")
    assert len(text.encode()) == 3_000_004


# -- chat scope -------------------------------------------------------------------------------


async def list_messages(
    client: Client, args: dict[str, Any], context: str | None
) -> dict[str, Any]:
    meta = {META_CONTEXT_ID: context} if context is not None else None
    result = await call(client, "chat_list_messages", args, meta=meta)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


async def test_chat_default_scope_is_the_callers_context_and_all_is_everything() -> None:
    async with Client(build_server("chat").server, mode="legacy") as client:
        blog = await list_messages(client, {}, "Blog")
        everything = await list_messages(client, {"context_id": "all"}, "Blog")
        explicit = await list_messages(client, {"context_id": "General"}, "Blog")
        no_caller = await list_messages(client, {}, None)
    assert (blog["context_id"], blog["scope"]) == ("Blog", "caller")
    assert {m["context_id"] for m in blog["messages"]} == {"Blog"}
    assert len(blog["messages"]) == 3
    assert everything["scope"] == "all"
    assert {m["context_id"] for m in everything["messages"]} == {"General", "Blog", "Dahlia"}
    assert len(everything["messages"]) == 39
    times = [m["at"] for m in everything["messages"]]
    assert times == sorted(times)
    assert (explicit["scope"], len(explicit["messages"])) == ("argument", 30)
    # No context anywhere: the app's default tab, like a fresh interactive session.
    assert (no_caller["context_id"], no_caller["scope"]) == ("General", "default")


async def test_chat_since_limit_post_and_unknown_context() -> None:
    async with Client(build_server("chat").server, mode="legacy") as client:
        today = await list_messages(
            client, {"context_id": "all", "since": "2026-11-27T00:00:00Z"}, None
        )
        assert all(m["at"] >= "2026-11-27" for m in today["messages"])
        assert len(today["messages"]) == 34
        last_two = await list_messages(client, {"context_id": "General", "limit": 2}, None)
        assert [m["text"] for m in last_two["messages"]][-1].startswith("Scene scheduled")
        assert len(last_two["messages"]) == 2
        posted = await call(
            client, "chat_post_message", {"context_id": "Blog", "text": "Draft ready"}
        )
        assert posted.structured_content is not None
        assert posted.structured_content["context_id"] == "Blog"
        blog = await list_messages(client, {}, "Blog")
        assert blog["messages"][-1]["text"] == "Draft ready"
        unknown = await call(client, "chat_list_messages", {"context_id": "Recipes"})
        assert unknown.is_error
        assert "unknown context 'Recipes'" in text_of(unknown)
        assert "Blog, Dahlia, General" in text_of(unknown)
        bad_since = await call(client, "chat_list_messages", {"since": "yesterday"})
        assert bad_since.is_error


async def test_chat_fixture_can_be_replaced(tmp_path: Path) -> None:
    fixture = tmp_path / "chat.yaml"
    fixture.write_text(
        "default_context: Home\ncontexts:\n  Home:\n"
        "    - {at: '2026-01-01T10:00:00Z', author: a, text: hello}\n",
        encoding="utf-8",
    )
    async with Client(build_server("chat", chat_fixture=fixture).server, mode="legacy") as client:
        home = await list_messages(client, {}, None)
    assert home["context_id"] == "Home"
    assert [m["text"] for m in home["messages"]] == ["hello"]


def test_bad_chat_fixture_names_file_and_field(tmp_path: Path) -> None:
    fixture = tmp_path / "chat.yaml"
    fixture.write_text(
        "contexts:\n  Home:\n    - {at: soon, author: a, text: x}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        build_server("chat", chat_fixture=fixture)
    assert "chat.yaml" in str(caught.value)
    assert "contexts.Home.0.at" in str(caught.value)


# -- event log and traces -----------------------------------------------------------------------


async def test_event_log_fields_and_jsonl(tmp_path: Path) -> None:
    sink = tmp_path / "mirror.jsonl"
    events = EventLog(sink=sink)
    fake = build_server("traffic", events=events)
    async with Client(fake.server, mode="legacy") as client:
        await call(client, "traffic_status", {"route": "r"}, meta={META_CONTEXT_ID: "Blog"})
    events.close()
    request = events.find(kind="request", tool="traffic_status")[0]
    assert request.method == "tools/call"
    assert request.context_id == "Blog"
    assert request.call_index == 1
    assert request.request_id is not None
    assert request.arguments == {"route": "r"}
    assert [e.seq for e in events.events] == list(range(1, len(events.events) + 1))
    assert events.events[0].kind == "started"
    assert events.events[-1].kind == "stopped"
    out = tmp_path / "events.jsonl"
    events.write_jsonl(out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == [json.loads(line) for line in sink.read_text().splitlines()]
    assert lines == [e.to_json() for e in events.events]


async def test_trace_continues_from_client_into_the_server_span() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fake = build_server("ssh", tracer_provider=provider)
    caller = provider.get_tracer("test")
    async with Client(fake.server, mode="legacy") as client:
        with caller.start_as_current_span("agent turn") as parent:
            await call(client, "mem_ssh", {"host": "h", "command": "c"})
    server_span = next(s for s in exporter.get_finished_spans() if s.name == "tools/call mem_ssh")
    assert server_span.kind.name == "SERVER"
    assert server_span.context.trace_id == parent.get_span_context().trace_id
    assert server_span.parent is not None
    assert server_span.attributes is not None
    assert server_span.attributes["gen_ai.tool.name"] == "mem_ssh"


async def test_crash_under_direct_dispatch_fails_in_flight_and_later_calls() -> None:
    # Client(server) in "auto" mode dispatches directly: no connection to close, so the crash
    # fails every in-flight call the way a closed connection does, until a client reconnects.
    script = ServerScript(
        tools={
            "chat_list_messages": ToolScript(default=Behaviour(hang=True)),
            "chat_post_message": ToolScript(calls={1: Behaviour(crash=Crash())}),
        }
    )
    fake = build_server("chat", script=script)
    codes: list[int] = []

    async def hanging_call(client: Client) -> None:
        with pytest.raises(MCPError) as caught:
            await call(client, "chat_list_messages", {})
        codes.append(caught.value.error.code)

    post = {"context_id": "Blog", "text": "x"}
    async with Client(fake.server) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(hanging_call, client)
            with anyio.fail_after(TIMEOUT):
                await fake.events.wait_for(kind="request", tool="chat_list_messages")
            with pytest.raises(MCPError) as crashed:
                await call(client, "chat_post_message", post)
            codes.append(crashed.value.error.code)
        with pytest.raises(MCPError) as later:
            await call(client, "chat_post_message", post)
        codes.append(later.value.error.code)
    assert codes == [-32000, -32000, -32000]
    # A new client is a respawned server: it is served again.
    async with Client(fake.server) as client:
        assert not (await call(client, "chat_post_message", post)).is_error
