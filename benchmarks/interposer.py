"""Interposer benchmark: a ``tools/call`` round trip direct over stdio vs through
``harness interpose``, measured side by side in one run.

    python -m benchmarks.interposer [--calls 400] [--warmup 50]

Three real ``mcp`` stdio clients talk to three copies of the fake ``ssh`` server: directly,
through the interposer with no plan, and through the interposer with a plan whose faults never
match (every frame is parsed and checked). Calls alternate between the clients so drift of the
machine hits all three alike. Prints the median and p90 of each, the added median in µs and the
ratio to direct.

Then the bare relay: a 1 KiB JSON-RPC frame echoed by ``cat``, directly and through the
interposer, alternating, ``--echoes`` times: the interposer's own cost without an MCP server.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
from anyio.abc import Process
from mcp import Client, StdioServerParameters

from benchmarks._alternate import compared
from benchmarks._figures import Figure

SERVER = [sys.executable, "-m", "fake_servers.mcp.ssh"]
INTERPOSE = [sys.executable, "-m", "harness", "interpose"]
ARGS = {"host": "db1", "command": "uptime"}
IDLE_PLAN = """
- {type: drop, count: all, match: {method: never/called}}
- {type: delay, seconds: 1, count: all, match: {tool: no_such_tool}}
"""


def _params(command: list[str]) -> StdioServerParameters:
    return StdioServerParameters(command=command[0], args=command[1:])


async def _call_samples(calls: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per ``tools/call`` for each setup, alternating between them."""
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "plan.yaml"
        plan.write_text(IDLE_PLAN)
        setups = {
            "direct": SERVER,
            "interposer": [*INTERPOSE, "--", *SERVER],
            "interposer+plan": [*INTERPOSE, "--plan", str(plan), "--", *SERVER],
        }
        async with AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(Client(_params(cmd), mode="legacy"))
                for name, cmd in setups.items()
            }
            samples: dict[str, list[float]] = {name: [] for name in clients}
            for index in range(warmup + calls):
                for name, client in clients.items():
                    start = time.perf_counter()
                    await client.call_tool("mem_ssh", ARGS, read_timeout_seconds=30)
                    elapsed = time.perf_counter() - start
                    if index >= warmup:
                        samples[name].append(elapsed)
    return samples


async def _main(calls: int, warmup: int) -> None:
    samples = await _call_samples(calls, warmup)
    direct = statistics.median(samples["direct"])
    print(f"tools/call round trip over stdio, {calls} calls each (after {warmup} warm-up)")
    for name, values in samples.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        line = f"{name:>16}: median {median * 1e6:8.0f} µs  p90 {p90 * 1e6:8.0f} µs"
        if name != "direct":
            line += f"  added {(median - direct) * 1e6:+7.0f} µs  ratio {median / direct:.2f}x"
        print(line)


FRAME = (
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":"'
    + b"x" * 940
    + b'"}}}\n'
)


async def _echo_once(process: Process) -> float:
    assert process.stdin is not None
    assert process.stdout is not None
    start = time.perf_counter()
    await process.stdin.send(FRAME)
    received = b""
    while not received.endswith(b"\n"):
        received += await process.stdout.receive()
    return time.perf_counter() - start


async def _echo_samples(echoes: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per 1 KiB frame echoed by ``cat``, direct and through the interposer."""
    samples: dict[str, list[float]] = {"cat": [], "interposer+cat": []}
    async with (
        await anyio.open_process(["cat"]) as direct,
        await anyio.open_process([*INTERPOSE, "--", "cat"]) as relayed,
    ):
        for index in range(warmup + echoes):
            for name, process in (("cat", direct), ("interposer+cat", relayed)):
                elapsed = await _echo_once(process)
                if index >= warmup:
                    samples[name].append(elapsed)
        for process in (direct, relayed):
            assert process.stdin is not None
            await process.stdin.aclose()
    return samples


async def _echo(echoes: int, warmup: int) -> None:
    samples = await _echo_samples(echoes, warmup)
    base = statistics.median(samples["cat"])
    relay = statistics.median(samples["interposer+cat"])
    print(f"1 KiB frame echoed by cat, {echoes} each")
    print(f"{'cat':>16}: median {base * 1e6:8.0f} µs")
    added = (relay - base) * 1e6
    print(f"{'interposer+cat':>16}: median {relay * 1e6:8.0f} µs  added {added:+7.0f} µs")


def figures(*, quick: bool = False) -> list[Figure]:
    """Median ``tools/call`` round trip through the interposer (with and without a plan) and
    the bare relay cost, each against the direct connection measured alongside."""
    calls, echoes, warmup = (100, 300, 20) if quick else (400, 2000, 50)
    calls_s = anyio.run(_call_samples, calls, warmup)
    echo_s = anyio.run(_echo_samples, echoes, warmup)
    # Calls alternate one by one: each ratio is the median of the per-call ratios.
    return [
        compared(
            "interposer tools/call round trip (stdio, median)",
            calls_s,
            "interposer",
            "direct",
            "us",
            scale=1e6,
        ),
        compared(
            "interposer + idle fault plan tools/call round trip",
            calls_s,
            "interposer+plan",
            "direct",
            "us",
            scale=1e6,
        ),
        compared(
            "interposer relay, 1 KiB frame echoed by cat",
            echo_s,
            "interposer+cat",
            "cat",
            "us",
            scale=1e6,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--echoes", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50)
    options = parser.parse_args()
    anyio.run(_main, options.calls, options.warmup)
    anyio.run(_echo, options.echoes, options.warmup)


if __name__ == "__main__":
    main()
