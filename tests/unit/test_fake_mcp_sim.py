"""Fake MCP servers under the sim loop: scripted latency and hangs cost no wall time, and the
same seed gives the same event log."""

from __future__ import annotations

from typing import Any

import anyio
from mcp import Client, MCPError

from fake_servers.mcp import ServerScript, ToolScript, build_server
from harness.chaos_random import ChaosRandom
from harness.sim import run_sim


async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    script = ServerScript(
        slow_start=2.0,
        tools={
            "mem_ssh": ToolScript(
                match=[
                    {"args": {"host": "slow"}, "then": {"latency": 200.0}},  # type: ignore[list-item]
                    {"args": {"host": "ok"}, "then": {"latency": 20.0}},  # type: ignore[list-item]
                ]
            )
        },
    )
    fake = build_server("ssh", script=script, rng=ChaosRandom(3))
    outcome: dict[str, Any] = {}

    async def one(host: str) -> None:
        try:
            await client.call_tool(
                "mem_ssh", {"host": host, "command": "uptime"}, read_timeout_seconds=150
            )
            outcome[host] = ("ok", anyio.current_time())
        except MCPError as exc:
            outcome[host] = (exc.error.code, anyio.current_time())

    async with Client(fake.server, mode="legacy") as client, anyio.create_task_group() as tg:
        tg.start_soon(one, "slow")
        tg.start_soon(one, "ok")
    return [e.to_json() for e in fake.events.events], outcome


def test_latency_and_timeouts_run_in_virtual_time() -> None:
    first = run_sim(scenario, seed=11)
    events, outcome = first.value
    assert outcome["ok"][0] == "ok"
    assert outcome["slow"][0] == -32001
    assert first.stats.virtual_elapsed >= 150
    finished = next(e for e in events if e["kind"] == "finished" and e.get("tool") == "mem_ssh")
    assert finished["duration"] == 20.0
    cancelled = next(e for e in events if e["kind"] == "cancelled")
    assert cancelled["arguments"]["host"] == "slow"
    assert cancelled["duration"] == 150.0
    init = next(e for e in events if e["kind"] == "finished" and e["method"] == "initialize")
    assert init["duration"] == 2.0
    assert run_sim(scenario, seed=11).value == first.value
