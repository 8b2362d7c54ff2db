"""Benchmark: what the runtime adds to a tool call.

Run ``python -m benchmarks.runtime``. Side by side in one run, on the same in-memory fake
``ssh`` server (real JSON-RPC framing, ``mode="legacy"``):

- floor: a raw ``mcp.Client.call_tool`` on one open session;
- runtime: ``AgentRunner.execute_tool`` — scope policy, the shared ``MCPHostManager`` (in-flight
  accounting, timeout, reconnect policy), the ``execute_tool`` span and the metrics.

Both sides run with the same tracing set up (the harness's global routing provider with a
batch span processor and an in-memory exporter), so the MCP SDK's own spans cost the same on
both. The machine is shared and noisy: each round times a batch of calls on every side, in an
order rotating from round to round, and the ratio is the median of the per-round ratios, so
drift between rounds cancels. Target: runtime <= 1.15x.

``--breakdown`` adds two sides that split what the runtime adds: the raw call inside the
runtime's own ``execute_tool`` span (same attributes, nothing else), and the host manager's
``call_tool`` alone (policy, in-flight accounting, events, metrics; no span).

``--instructions`` counts the same four sides in CPU instructions instead of time, under
valgrind's callgrind (which must be installed): each side runs in its own process at two
lengths, and the difference over the extra calls is the count per call. It is slow (minutes)
but free of the machine's noise, so it shows changes of a fraction of a percent.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import anyio
from mcp import Client
from opentelemetry import trace
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from benchmarks._alternate import alternate_async, per_round_ratio
from benchmarks._figures import Figure, make
from fake_servers.anthropic import FakeAnthropic, ModelScript
from fake_servers.mcp import build_server
from harness.chaos_random import ChaosRandom
from harness.runtime.agent import AgentSpec
from harness.runtime.config import RuntimeConfig
from harness.runtime.host import ServerSpec
from harness.runtime.runtime import Runtime, client_options
from harness.telemetry.current_span import CurrentSpan
from harness.telemetry.routing import SpanSink, install_router

ARGS = {"host": "web1", "command": "uptime"}
TARGET = "<= 1.15x"


@dataclass(frozen=True, slots=True)
class Result:
    raw_us: float  # median per call
    runtime_us: float
    ratio: float  # median of the per-round ratios
    rounds: int


SIDES = ("raw", "runtime")
BREAKDOWN = ("raw", "span only", "host only", "runtime")


async def _measure(
    calls: int, rounds: int, exporter: InMemorySpanExporter, sides: tuple[str, ...]
) -> dict[str, list[float]]:
    fake = build_server("ssh")
    config = RuntimeConfig()
    # The API is not called here: an in-process fake stands for it.
    script = ModelScript.model_validate({"agents": {"main": {"turns": [{"text": "unused"}]}}})
    api = FakeAnthropic(script).async_client(**client_options(config.api))
    spec = AgentSpec(name="bench")
    tracer = trace.get_tracer("harness.runtime")
    async with (
        Client(fake.server, mode="legacy", cache=None) as client,
        api,
        Runtime(config, client=api, servers=[ServerSpec("ssh", instance=fake.server)]) as rt,
    ):
        await client.list_tools()
        await rt.host.list_tools()
        runner, host = rt.runner, rt.host
        # "span only" records the span the runtime records: same name and attributes, taken
        # from one real call (untimed) so they cannot drift from the runtime's.
        await runner.execute_tool(spec, "mem_ssh", ARGS, call_id="toolu_probe")
        install_router().provider.force_flush()
        [probe] = [s for s in exporter.get_finished_spans() if s.name.startswith("execute_tool")]
        exporter.clear()
        span_name, span_attributes = probe.name, dict(probe.attributes or {})

        async def raw(i: int) -> None:
            await client.call_tool("mem_ssh", ARGS, read_timeout_seconds=150)

        async def span_only(i: int) -> None:
            attributes = {**span_attributes, "gen_ai.tool.call.id": f"toolu_{i}"}
            with CurrentSpan(tracer, span_name, attributes):
                await client.call_tool("mem_ssh", ARGS, read_timeout_seconds=150)

        async def host_only(i: int) -> None:
            await host.call_tool("ssh", "mem_ssh", ARGS)

        async def runtime(i: int) -> None:
            await runner.execute_tool(spec, "mem_ssh", ARGS, call_id=f"toolu_{i}")

        bodies: dict[str, Callable[[int], Awaitable[None]]] = {
            "raw": raw,
            "span only": span_only,
            "host only": host_only,
            "runtime": runtime,
        }

        def timed(body: Callable[[int], Awaitable[None]]) -> Callable[[], Awaitable[float]]:
            async def run() -> float:
                start = time.perf_counter()
                for i in range(calls):
                    await body(i)
                elapsed = (time.perf_counter() - start) / calls
                # Untimed: finished spans are dropped, as an exporter that sends them would;
                # kept, they would grow every garbage collection pass of the run.
                exporter.clear()
                return elapsed

            return run

        # The untimed first round warms every path (first-call caches, lazy imports).
        return await alternate_async({side: timed(bodies[side]) for side in sides}, rounds)


def _timings(calls: int, rounds: int, sides: tuple[str, ...]) -> dict[str, list[float]]:
    """Per-round seconds per call of each side, under the harness's routing tracer provider
    (attached for the run)."""
    exporter = InMemorySpanExporter()
    # A queue big enough that no span is dropped (a dropped span would cost neither side).
    sink = SpanSink([BatchSpanProcessor(exporter, max_queue_size=65_536)], rng=ChaosRandom(0))
    with install_router().attach(sink):
        return anyio.run(_measure, calls, rounds, exporter, sides)


def measure(*, calls: int = 100, rounds: int = 31) -> Result:
    """Time the runtime's tool call against the raw client call, rounds alternated."""
    times = _timings(calls, rounds, SIDES)
    return Result(
        raw_us=statistics.median(times["raw"]) * 1e6,
        runtime_us=statistics.median(times["runtime"]) * 1e6,
        ratio=per_round_ratio(times, "runtime", "raw"),
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


def _breakdown(calls: int, rounds: int) -> None:
    times = _timings(calls, rounds, BREAKDOWN)
    raw = statistics.median(times["raw"]) * 1e6
    print(f"{'side':<12} {'us/call':>9} {'added us':>9} {'ratio':>7}")
    for side in BREAKDOWN:
        value = statistics.median(times[side]) * 1e6
        ratio = per_round_ratio(times, side, "raw")
        print(f"{side:<12} {value:>9.1f} {value - raw:>+9.1f} {ratio:>7.3f}")
    print(f"(medians of {rounds} rounds of {calls} calls per side; ratios are per-round medians)")


_COLLECTED = re.compile(r"Collected : (\d+)")
# Each side runs this many rounds of 100 calls in its short and its long process (plus the
# warm-up round); the difference between the two is what 1,000 calls cost.
_SHORT_ROUNDS, _LONG_ROUNDS, _ROUND_CALLS = 1, 11, 100


def _instructions_of(side: str, rounds: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.runtime",
        "--run",
        side,
        "--calls",
        str(_ROUND_CALLS),
        "--rounds",
        str(rounds),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = done.stderr.strip().splitlines()[-3:]
        raise SystemExit(f"valgrind run of side {side!r} failed: {' / '.join(tail)}")
    return int(found.group(1))


def _instructions() -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind on PATH (e.g. apt install valgrind)")
    jobs = [(side, rounds) for side in BREAKDOWN for rounds in (_SHORT_ROUNDS, _LONG_ROUNDS)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: _instructions_of(*job), jobs), strict=True))
    extra_calls = (_LONG_ROUNDS - _SHORT_ROUNDS) * _ROUND_CALLS
    per_call = {
        side: (counts[side, _LONG_ROUNDS] - counts[side, _SHORT_ROUNDS]) / extra_calls
        for side in BREAKDOWN
    }
    raw = per_call["raw"]
    print(f"{'side':<12} {'instr/call':>11} {'added':>9} {'ratio':>7}")
    for side in BREAKDOWN:
        value = per_call[side]
        print(f"{side:<12} {value:>11,.0f} {value - raw:>+9,.0f} {value / raw:>7.4f}")
    print(f"(callgrind instruction counts over {extra_calls} calls per side)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, help="calls per round and side (default 100)")
    parser.add_argument("--rounds", type=int, help="timed rounds (default 31)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the execute_tool span alone and the host manager alone",
    )
    mode.add_argument(
        "--instructions",
        action="store_true",
        help="count the breakdown's sides in CPU instructions under valgrind (slow)",
    )
    mode.add_argument(
        "--run", choices=BREAKDOWN, help="only run one side, untimed (what --instructions counts)"
    )
    args = parser.parse_args()
    if args.instructions:
        if args.calls is not None or args.rounds is not None:
            parser.error("--instructions picks its own lengths; drop --calls and --rounds")
        _instructions()
        return
    calls = 100 if args.calls is None else args.calls
    rounds = 31 if args.rounds is None else args.rounds
    if calls < 1 or rounds < 1:
        parser.error("--calls and --rounds must be at least 1")
    if args.breakdown:
        _breakdown(calls, rounds)
        return
    if args.run:
        _timings(calls, rounds, (args.run,))
        return
    result = measure(calls=calls, rounds=rounds)
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
