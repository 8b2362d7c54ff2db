"""Interposer benchmark: a ``tools/call`` round trip direct over stdio vs through
``harness interpose``, measured side by side in one run.

    python -m benchmarks.interposer [--calls 400] [--warmup 50]

Three real ``mcp`` stdio clients talk to three copies of the fake ``ssh`` server: directly,
through the interposer with no plan, and through the interposer with a plan whose faults never
match (every frame is parsed and checked). Calls alternate between the clients so drift of the
machine hits all three alike. Prints the median and p90 of each, the added median in µs and the
ratio to direct.
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
from mcp import Client, StdioServerParameters

SERVER = [sys.executable, "-m", "fake_servers.mcp.ssh"]
INTERPOSE = [sys.executable, "-m", "harness", "interpose"]
ARGS = {"host": "db1", "command": "uptime"}
IDLE_PLAN = """
- {type: drop, count: all, match: {method: never/called}}
- {type: delay, seconds: 1, count: all, match: {tool: no_such_tool}}
"""


def _params(command: list[str]) -> StdioServerParameters:
    return StdioServerParameters(command=command[0], args=command[1:])


async def _main(calls: int, warmup: int) -> None:
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
    direct = statistics.median(samples["direct"])
    print(f"tools/call round trip over stdio, {calls} calls each (after {warmup} warm-up)")
    for name, values in samples.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        line = f"{name:>16}: median {median * 1e6:8.0f} µs  p90 {p90 * 1e6:8.0f} µs"
        if name != "direct":
            line += f"  added {(median - direct) * 1e6:+7.0f} µs  ratio {median / direct:.2f}x"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=50)
    options = parser.parse_args()
    anyio.run(_main, options.calls, options.warmup)


if __name__ == "__main__":
    main()
