"""Benchmark: what the runtime adds to a tool call.

Run ``python -m benchmarks.runtime``. Side by side in one run, on the same in-memory fake
``ssh`` server (real JSON-RPC framing, ``mode="legacy"``):

- floor: a raw ``mcp.Client.call_tool`` on one open session;
- runtime: ``AgentRunner.execute_tool`` — scope policy, the shared ``MCPHostManager`` (in-flight
  accounting, timeout, reconnect policy), the ``execute_tool`` span and the metrics.

Both sides run with the same tracing set up (the harness's global routing provider with a
batch span processor and an in-memory exporter), so the MCP SDK's own spans cost the same on
both. Rounds alternate between the sides to spread machine noise. Target: runtime <= 1.15x.
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio
from mcp import Client
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fake_servers.mcp import build_server
from harness.chaos_random import ChaosRandom
from harness.runtime.agent import AgentSpec
from harness.runtime.config import RuntimeConfig
from harness.runtime.host import ServerSpec
from harness.runtime.runtime import Runtime
from harness.telemetry.routing import SpanSink, install_router

ARGS = {"host": "web1", "command": "uptime"}


async def _measure(calls: int, rounds: int) -> dict[str, list[float]]:
    fake = build_server("ssh")
    samples: dict[str, list[float]] = {"raw": [], "runtime": []}
    config = RuntimeConfig.model_validate(
        {"api": {"fake_script": {"agents": {"main": {"turns": [{"text": "unused"}]}}}}}
    )
    spec = AgentSpec(name="bench")
    async with (
        Client(fake.server, mode="legacy", cache=None) as client,
        Runtime(config, server_specs=[ServerSpec("ssh", instance=fake.server)]) as rt,
    ):
        await client.list_tools()
        await rt.host.list_tools()
        runner = rt.runner
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(calls):
                await client.call_tool("mem_ssh", ARGS, read_timeout_seconds=150)
            samples["raw"].append((time.perf_counter() - start) / calls)
            start = time.perf_counter()
            for i in range(calls):
                await runner.execute_tool(spec, "mem_ssh", ARGS, call_id=f"toolu_{i}")
            samples["runtime"].append((time.perf_counter() - start) / calls)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per round and side")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    exporter = InMemorySpanExporter()
    sink = SpanSink([BatchSpanProcessor(exporter)], rng=ChaosRandom(0))
    with install_router().attach(sink):
        samples = anyio.run(_measure, args.calls, args.rounds)
    raw = statistics.median(samples["raw"]) * 1e6
    runtime = statistics.median(samples["runtime"]) * 1e6
    ratio = runtime / raw
    print(f"{'figure':<44} {'value':>10} {'floor':>10} {'ratio':>7} {'target':>8}")
    print(
        f"{'tool call through the runtime (median, us)':<44} {runtime:>10.1f} {raw:>10.1f} "
        f"{ratio:>7.3f} {'<= 1.15':>8}  {'met' if ratio <= 1.15 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
