"""Benchmark: round trip of a scripted fake MCP tool against a bare ``MCPServer`` echo tool.

Run ``python -m benchmarks.fake_mcp``. Measures, side by side in one run, the median
``tools/call`` round trip through the real ``mcp.Client`` in memory (legacy mode: JSON-RPC over
memory streams) and over stdio subprocesses, and the time from spawn to ready for stdio.
The floor is a bare ``MCPServer`` with an async echo tool; the target is scripted <= 1.2x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.server.mcpserver import MCPServer

from benchmarks._figures import Figure, make
from fake_servers.mcp import (
    Behaviour,
    ResultSpec,
    ServerScript,
    ToolScript,
    build_server,
    stdio_parameters,
)

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
    server = MCPServer("bare-echo")

    @server.tool()
    async def echo(host: str, command: str) -> str:
        return command

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


async def median_round_trip(client: Client, tool: str, calls: int) -> float:
    args = {"host": "nas01", "command": "uptime"}
    for _ in range(min(50, calls)):
        await client.call_tool(tool, args, read_timeout_seconds=30)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await client.call_tool(tool, args, read_timeout_seconds=30)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


async def timed_session(
    target: MCPServer | StdioServerParameters, tool: str, calls: int
) -> tuple[float, float]:
    """(spawn-to-ready seconds, median round trip seconds)."""
    start = time.perf_counter()
    async with Client(target, mode="legacy") as client:
        ready = time.perf_counter() - start
        return ready, await median_round_trip(client, tool, calls)


def bare_stdio() -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "benchmarks.fake_mcp", "--serve-bare"]
    )


async def bench(calls: int, spawns: int) -> list[tuple[str, float, float]]:
    rows: list[tuple[str, float, float]] = []

    def row(label: str, floor: float, scripted: float) -> None:
        rows.append((label, floor, scripted))

    _, floor = await timed_session(bare_server(), "echo", calls)
    _, scripted = await timed_session(
        build_server("ssh", script=scripted_script()).server, "mem_ssh", calls
    )
    _, builtin = await timed_session(build_server("ssh").server, "mem_ssh", calls)
    row("in-memory tools/call, scripted result", floor, scripted)
    row("in-memory tools/call, built-in result", floor, builtin)

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "ssh.yaml"
        script.write_text(SCRIPT_YAML, encoding="utf-8")
        fake_params = stdio_parameters("ssh", script=script)
        stdio_calls = max(calls // 4, 50)
        ready_floor, floor_rt = await timed_session(bare_stdio(), "echo", stdio_calls)
        ready_fake, fake_rt = await timed_session(fake_params, "mem_ssh", stdio_calls)
        row("stdio tools/call, scripted result", floor_rt, fake_rt)
        readies_floor, readies_fake = [ready_floor], [ready_fake]
        for _ in range(spawns - 1):
            readies_floor.append((await timed_session(bare_stdio(), "echo", 1))[0])
            readies_fake.append((await timed_session(fake_params, "mem_ssh", 1))[0])
        row(
            "stdio spawn to ready",
            statistics.median(readies_floor),
            statistics.median(readies_fake),
        )
    return rows


def print_table(rows: list[tuple[str, float, float]]) -> None:
    print(f"{'measure (median)':40} {'bare floor':>12} {'fake':>12} {'ratio':>7}")
    for label, floor, fake in rows:
        print(f"{label:40} {_ms(floor):>12} {_ms(fake):>12} {fake / floor:>6.2f}x")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def figures(*, quick: bool = False) -> list[Figure]:
    """Median ``tools/call`` round trip of the fake vs the bare floor, and stdio spawn to ready."""
    rows = anyio.run(bench, 300 if quick else 2000, 1 if quick else 3)
    return [
        make(
            f"fake MCP {label}",
            fake * 1000,
            "ms",
            baseline=floor * 1000,
            target="<= 1.2x" if "scripted" in label else "",
        )
        for label, floor, fake in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="round trips per in-memory row")
    parser.add_argument("--spawns", type=int, default=3, help="stdio spawns per server")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_bare:
        bare_server().run()
        return
    print_table(anyio.run(bench, options.calls, options.spawns))


if __name__ == "__main__":
    main()
