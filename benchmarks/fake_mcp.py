"""Benchmark: round trip of a scripted fake MCP tool against a bare ``MCPServer`` tool.

Run ``python -m benchmarks.fake_mcp``. Measures, side by side in one run, the ``tools/call``
round trip through the real ``mcp.Client`` in memory (legacy mode: JSON-RPC over memory
streams) and over stdio subprocesses, and the time from spawn to ready for stdio. The floor is
a bare ``MCPServer`` tool doing the fake's result work and no more: registered as the fake's
tools are (no output schema, so no structured output) and returning the same text result.
Every client is open at once and the sides alternate, a batch of calls each per round; the
ratio is the median of the per-round ratios. The target is scripted <= 1.2x.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent

from benchmarks._alternate import Samples, alternate_async, compared
from benchmarks._figures import Figure
from fake_servers.mcp import (
    Behaviour,
    ResultSpec,
    ServerScript,
    ToolScript,
    build_server,
    stdio_parameters,
)
from harness.logging_guard import keep_root_logging

ARGS = {"host": "nas01", "command": "uptime"}

SCRIPT_YAML = """
tools:
  mem_ssh:
    calls:
      1000000: {hang: true}
    match:
      - args: {host: never}
        then: {hang: true}
    default: {result: {text: "ok"}}
"""


def bare_server() -> MCPServer:
    with keep_root_logging():
        server = MCPServer("bare-echo")

    @server.tool(structured_output=False)
    async def echo(host: str, command: str) -> CallToolResult:
        return CallToolResult(content=[TextContent(type="text", text="ok")])

    return server


def scripted_script() -> ServerScript:
    return ServerScript(
        tools={
            "mem_ssh": ToolScript(
                calls={1_000_000: Behaviour(hang=True)},
                match=[{"args": {"host": "never"}, "then": {"hang": True}}],  # type: ignore[list-item]
                default=Behaviour(result=ResultSpec(text="ok")),
            )
        }
    )


def _batch(client: Client, tool: str, calls: int) -> Callable[[], Awaitable[float]]:
    """Seconds per call of ``calls`` round trips."""

    async def run() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            await client.call_tool(tool, ARGS, read_timeout_seconds=30)
        return (time.perf_counter() - start) / calls

    return run


def _spawn(target: StdioServerParameters) -> Callable[[], Awaitable[float]]:
    """Seconds from spawn to an initialized session."""

    async def run() -> float:
        start = time.perf_counter()
        async with Client(target, mode="legacy"):
            return time.perf_counter() - start

    return run


async def _sessions(
    targets: dict[str, tuple[MCPServer | StdioServerParameters, str]], calls: int, rounds: int
) -> Samples:
    async with AsyncExitStack() as stack:
        sides = {}
        for side, (target, tool) in targets.items():
            client = await stack.enter_async_context(Client(target, mode="legacy"))
            sides[side] = _batch(client, tool, calls)
        return await alternate_async(sides, rounds)


def bare_stdio() -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "benchmarks.fake_mcp", "--serve-bare"]
    )


async def bench(calls: int, rounds: int, spawns: int) -> list[Figure]:
    memory = await _sessions(
        {
            "floor": (bare_server(), "echo"),
            "scripted": (build_server("ssh", script=scripted_script()).server, "mem_ssh"),
            "built-in": (build_server("ssh").server, "mem_ssh"),
        },
        calls,
        rounds,
    )
    rows = [
        compared(
            f"fake MCP in-memory tools/call, {side} result",
            memory,
            side,
            "floor",
            "ms",
            scale=1000,
            target="<= 1.2x" if side == "scripted" else "",
        )
        for side in ("scripted", "built-in")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "ssh.yaml"
        script.write_text(SCRIPT_YAML, encoding="utf-8")
        fake = stdio_parameters("ssh", script=script)
        stdio = await _sessions(
            {"floor": (bare_stdio(), "echo"), "scripted": (fake, "mem_ssh")},
            max(calls // 4, 10),
            rounds,
        )
        ready = await alternate_async({"floor": _spawn(bare_stdio()), "fake": _spawn(fake)}, spawns)
    rows.append(
        compared(
            "fake MCP stdio tools/call, scripted result",
            stdio,
            "scripted",
            "floor",
            "ms",
            scale=1000,
            target="<= 1.2x",
        )
    )
    rows.append(compared("fake MCP stdio spawn to ready", ready, "fake", "floor", "ms", scale=1000))
    return rows


def figures(*, quick: bool = False) -> list[Figure]:
    """``tools/call`` round trip of the fake vs the bare floor, and stdio spawn to ready."""
    return anyio.run(bench, *((50, 7, 1) if quick else (100, 21, 3)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="in-memory round trips per round")
    parser.add_argument("--rounds", type=int, default=21, help="rounds of each side")
    parser.add_argument("--spawns", type=int, default=3, help="stdio spawns per server")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_bare:
        bare_server().run()
        return
    for row in anyio.run(bench, options.calls, options.rounds, options.spawns):
        print(
            f"{row['figure']:<48} floor {row['baseline'] or 0:8.3f} ms  "
            f"fake {row['value'] or 0:8.3f} ms  {row['ratio'] or 0:5.2f}x"
        )


if __name__ == "__main__":
    main()
