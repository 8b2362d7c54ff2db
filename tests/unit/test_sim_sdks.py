"""The real mcp and anthropic SDKs run unchanged on the virtual-time loop.

Three concurrent MCP tool calls (20 s, 140 s, 200 s) against a 150 s read timeout and one
Messages API call with 2 s of server latency, all in-process: the 200 s call times out at
exactly virtual 150 s and the whole run costs milliseconds of wall time.
"""

from __future__ import annotations

from typing import Any

import anthropic
import anyio
import httpx2
import pytest
from anthropic._base_client import get_platform
from mcp import Client, MCPError
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.sim import run_sim

READ_TIMEOUT = 150.0


def build_mcp_server() -> MCPServer:
    server = MCPServer("sim-check")

    @server.tool()
    async def wait(seconds: float) -> str:
        """Sleep for ``seconds`` (virtual) then answer."""
        await anyio.sleep(seconds)
        return f"waited {seconds:g}"

    return server


def build_messages_app() -> Starlette:
    async def messages(request: Request) -> JSONResponse:
        body = await request.json()
        await anyio.sleep(2)
        return JSONResponse(
            {
                "id": "msg_sim0000000000000000000001",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": "pong"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": 1},
            },
            headers={"request-id": "req_sim0000000000000000000001"},
        )

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


async def scenario() -> dict[str, Any]:
    outcomes: dict[str, Any] = {}
    started = anyio.current_time()

    async def call(client: Client, seconds: float) -> None:
        try:
            result = await client.call_tool(
                "wait", {"seconds": seconds}, read_timeout_seconds=READ_TIMEOUT
            )
        except MCPError as error:
            outcomes[f"tool-{seconds:g}"] = ("error", str(error), anyio.current_time() - started)
        else:
            text = result.content[0].text  # type: ignore[union-attr]
            outcomes[f"tool-{seconds:g}"] = ("ok", text, anyio.current_time() - started)

    async def ask_model() -> None:
        transport = httpx2.ASGITransport(app=build_messages_app())
        async with httpx2.AsyncClient(
            transport=transport, base_url="http://fake-anthropic"
        ) as http:
            model = anthropic.AsyncAnthropic(
                api_key="sk-ant-sim",
                base_url="http://fake-anthropic",
                http_client=http,
                max_retries=0,
                open_telemetry=False,
            )
            # The SDK resolves its platform headers in a worker thread at the first request;
            # a thread answering while timers are pending lets virtual time jump past them
            # (on 3.13 it answers late enough to see it). Resolved here, as the fake API does.
            model._platform = get_platform()
            message = await model.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=16,
                messages=[{"role": "user", "content": "ping"}],
            )
            block = message.content[0]
            assert block.type == "text"
            outcomes["llm"] = ("ok", block.text, anyio.current_time() - started)

    async with (
        Client(build_mcp_server(), mode="legacy") as client,
        anyio.create_task_group() as tg,
    ):
        for seconds in (20.0, 140.0, 200.0):
            tg.start_soon(call, client, seconds)
        tg.start_soon(ask_model)
    return outcomes


@pytest.mark.parametrize("strategy", ["fifo", "random", "pct"])
def test_real_sdks_run_in_virtual_time(strategy: str) -> None:
    result = run_sim(scenario, seed=3, strategy=strategy, virtual_time_limit=1_000)
    outcomes = result.value

    assert outcomes["tool-20"] == ("ok", "waited 20", 20.0)
    assert outcomes["tool-140"] == ("ok", "waited 140", 140.0)
    kind, message, at = outcomes["tool-200"]
    assert kind == "error"
    assert "Request 'tools/call' timed out" in message
    assert at == READ_TIMEOUT
    assert outcomes["llm"] == ("ok", "pong", 2.0)
    stats = result.stats
    print(
        f"{strategy}: {stats.virtual_elapsed:.1f} virtual s in {stats.wall_elapsed * 1000:.1f} ms "
        f"wall ({stats.steps} steps, {stats.timer_jumps} jumps, "
        f"ratio {stats.virtual_wall_ratio:,.0f}x)"
    )


def test_real_sdk_run_is_deterministic_per_seed() -> None:
    first = run_sim(scenario, seed=8, strategy="random")
    second = run_sim(scenario, seed=8, strategy="random")

    assert first.value == second.value
    assert first.stats.step_hash == second.stats.step_hash
    assert first.stats.steps == second.stats.steps


@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_real_sdks_hold_their_contract_under_every_explored_schedule(strategy: str) -> None:
    expected = run_sim(scenario, seed=0).value
    hashes = set()
    for seed in range(15):
        result = run_sim(scenario, seed=seed, strategy=strategy, virtual_time_limit=1_000)
        assert result.value == expected
        hashes.add(result.stats.step_hash)

    assert len(hashes) > 1
