"""Benchmark: what the runtime adds to a tool call.

Run ``python -m benchmarks.runtime``. Side by side in one run, on the same in-memory fake
``ssh`` server (real JSON-RPC framing, ``mode="legacy"``):

- floor: a raw ``mcp.Client.call_tool`` on one open session;
- runtime: ``AgentRunner.execute_tool`` — scope policy, the shared ``MCPHostManager`` (in-flight
  accounting, timeout, reconnect policy), the ``execute_tool`` span and the metrics.

Both sides run with the same tracing set up (the harness's global routing provider with a
batch span processor and an in-memory exporter), so the MCP SDK's own spans cost the same on
both. The machine is shared and noisy: each round times a batch of calls on both sides, in
alternating order (raw first on even rounds, runtime first on odd ones), and the ratio is the
median of the per-round ratios, so drift between rounds cancels. Target: runtime <= 1.15x.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import anyio
from mcp import Client
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from benchmarks._figures import Figure, make
from fake_servers.mcp import build_server
from harness.chaos_random import ChaosRandom
from harness.runtime.agent import AgentSpec
from harness.runtime.config import RuntimeConfig
from harness.runtime.host import ServerSpec
from harness.runtime.runtime import Runtime
from harness.telemetry.routing import SpanSink, install_router

ARGS = {"host": "web1", "command": "uptime"}
TARGET = "<= 1.15x"


@dataclass(frozen=True, slots=True)
class Result:
    raw_us: float  # median per call
    runtime_us: float
    ratio: float  # median of the per-round ratios
    rounds: int


async def _measure(
    calls: int, rounds: int, exporter: InMemorySpanExporter
) -> tuple[list[float], list[float]]:
    fake = build_server("ssh")
    raw: list[float] = []
    runtime: list[float] = []
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

        async def raw_side() -> None:
            start = time.perf_counter()
            for _ in range(calls):
                await client.call_tool("mem_ssh", ARGS, read_timeout_seconds=150)
            raw.append((time.perf_counter() - start) / calls)

        async def runtime_side() -> None:
            start = time.perf_counter()
            for i in range(calls):
                await runner.execute_tool(spec, "mem_ssh", ARGS, call_id=f"toolu_{i}")
            runtime.append((time.perf_counter() - start) / calls)

        # One untimed round of each warms both paths (first-call caches, lazy imports).
        await raw_side()
        await runtime_side()
        raw.clear()
        runtime.clear()
        for index in range(rounds):
            sides = (raw_side, runtime_side) if index % 2 == 0 else (runtime_side, raw_side)
            for side in sides:
                await side()
            # Untimed: finished spans are dropped between rounds, as an exporter that sends
            # them would; kept, they would grow every garbage collection pass of the run.
            exporter.clear()
    return raw, runtime


def measure(*, calls: int = 100, rounds: int = 31) -> Result:
    """Time both sides under the harness's routing tracer provider (attached for the run)."""
    exporter = InMemorySpanExporter()
    # A queue big enough that no span is dropped (a dropped span would cost neither side).
    sink = SpanSink([BatchSpanProcessor(exporter, max_queue_size=65_536)], rng=ChaosRandom(0))
    with install_router().attach(sink):
        raw, runtime = anyio.run(_measure, calls, rounds, exporter)
    return Result(
        raw_us=statistics.median(raw) * 1e6,
        runtime_us=statistics.median(runtime) * 1e6,
        ratio=statistics.median(r / b for r, b in zip(runtime, raw, strict=True)),
        rounds=rounds,
    )


def figures(*, quick: bool = False) -> list[Figure]:
    """The runtime's tool call against the raw client call on the same server."""
    result = measure(rounds=11 if quick else 31)
    return [
        make(
            "tool call through the runtime vs raw mcp.Client.call_tool",
            result.runtime_us,
            "us",
            baseline=result.raw_us,
            ratio=result.ratio,
            target=TARGET,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per round and side")
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args()
    result = measure(calls=args.calls, rounds=args.rounds)
    [row] = [
        make(
            "tool call (median, us)",
            result.runtime_us,
            "us",
            baseline=result.raw_us,
            ratio=result.ratio,
            target=TARGET,
        )
    ]
    print(f"{'figure':<28} {'value':>9} {'floor':>9} {'ratio':>7} {'target':>9}")
    print(
        f"{row['figure']:<28} {result.runtime_us:>9.1f} {result.raw_us:>9.1f} "
        f"{result.ratio:>7.3f} {TARGET:>9}  {'met' if row['met'] else 'MISSED'}"
        f"   (median of {result.rounds} per-round ratios)"
    )


if __name__ == "__main__":
    main()
