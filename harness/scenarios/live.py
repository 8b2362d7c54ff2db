"""Live mode: the same scenario for real, to prove a bug is not an artefact of the simulation.

Fake MCP servers run as real stdio subprocesses (the scenario may ask for streamable HTTP, and
for the TCP proxy in front of it), the
fake Messages API is served on a loopback port and reached over TCP by the real SDK, and time
is real, scaled by ``time_scale`` (0.01 turns a 150 s timeout into 1.5 s): every scenario time
(tool latencies, model latencies, call timeouts, scheduled tasks, fault times) is multiplied by
it. The scenario's faults act for real: kills and freezes through the stdio interposer, toxics
on the proxy's sockets, ``llm`` faults in the served fake API. Distributions are drawn from the
seed as in sim mode. The
scenario's wall budget is the watchdog; a run that hits it is reported as hung, with what was
still pending, and everything it started is closed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness._signals import is_interrupt
from harness._watchdog import WallBudgetExceeded, is_over_budget, wall_watchdog
from harness.chaos_random import ChaosRandom
from harness.clock import ScaledClock
from harness.errors import ConfigError, RuntimeFailure
from harness.runtime.config import RuntimeConfig
from harness.runtime.runtime import RunResult, Runtime
from harness.scenarios._record import build_record
from harness.scenarios.model import Policy, Scenario
from harness.scenarios.runner import WATCHDOG_GRACE_S, RunOutcome, judged
from harness.telemetry.components import regroup_by_service
from harness.telemetry.otlp_json import scrub_addresses, spans_to_otlp_json
from harness.telemetry.routing import SpanSink, install_router

__all__ = ["auto_time_scale", "live_config", "run_scenario_live"]


_HEARTBEAT_S = 0.05


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return pids


def live_config(scenario: Scenario, policy: Policy) -> RuntimeConfig:
    """The scenario's runtime config with real transports: fake servers as stdio subprocesses
    (unless the scenario chose HTTP) and the fake API on loopback."""
    config = scenario.runtime_config(policy)
    servers = {
        name: s.model_copy(update={"transport": "stdio"}) if s.transport == "memory" else s
        for name, s in config.servers.items()
    }
    api = config.api.model_copy(update={"loopback": True})
    return config.model_copy(update={"servers": servers, "api": api})


def _merge_subprocess_spans(trace: dict[str, Any], files: list[Path]) -> None:
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                continue  # a line cut short by a killed server
            trace.setdefault("resourceSpans", []).extend(data.get("resourceSpans", []))


def auto_time_scale(scenario: Scenario) -> float:
    """0.01, or less when the scenario's virtual budget would not fit half its wall budget
    (a task scheduled thirteen hours in must still run within the watchdog)."""
    return min(0.01, 0.5 * scenario.budget.wall / scenario.budget.virtual)


def _calls_in_flight(rt: Runtime) -> dict[str, list[str]]:
    """The tools whose calls have started and not ended, per server, in start order."""
    open_calls: dict[str, list[str]] = {}
    for event in rt.events.events:
        if event.kind == "call_started":
            open_calls.setdefault(event.data["server"], []).append(event.data["tool"])
        elif event.kind == "call_ended":
            tools = open_calls.get(event.data["server"], [])
            if event.data["tool"] in tools:
                tools.remove(event.data["tool"])
    return {server: tools for server, tools in open_calls.items() if tools}


def run_scenario_live(
    scenario: Scenario,
    *,
    policy: Policy,
    seed: int = 0,
    time_scale: float | None = None,
    source: str | None = None,
) -> RunOutcome:
    """Run ``scenario`` under ``policy`` for real (subprocesses, sockets, scaled real time).

    ``time_scale`` defaults to ``auto_time_scale(scenario)``."""
    if time_scale is None:
        time_scale = auto_time_scale(scenario)
    if not 0 < time_scale <= 10:
        raise ConfigError("must be in (0, 10]", field="--time-scale", value=time_scale)
    scenario, draws = scenario.resolve(seed)
    config = live_config(scenario, policy)
    rng = ChaosRandom(seed)
    box: dict[str, Any] = {}
    exporter = InMemorySpanExporter()
    sink = SpanSink([SimpleSpanProcessor(exporter)])
    before = _children()
    hung, pending = False, []
    result: RunResult | None = None
    workdir_handle = tempfile.TemporaryDirectory(prefix="harness-live-")
    workdir = Path(workdir_handle.name)

    async def main() -> RunResult | None:
        clock = ScaledClock(time_scale)
        async with Runtime(
            config, clock=clock, rng=rng, time_scale=time_scale, workdir=workdir
        ) as rt:
            box["runtime"] = rt
            async with anyio.create_task_group() as watchdog:

                async def heartbeat() -> None:
                    # Beats while the event loop runs; the process watchdog reads them.
                    while True:
                        box["beats"] = box.get("beats", 0) + 1
                        await anyio.sleep(_HEARTBEAT_S)

                async def expire() -> None:
                    await anyio.sleep(scenario.budget.wall)
                    # What is pending, read before the cancellation unwinds the calls.
                    box["in_flight"] = _calls_in_flight(rt)
                    watchdog.cancel_scope.cancel()

                watchdog.start_soon(heartbeat)
                watchdog.start_soon(expire)
                box["result"] = await rt.run()
                watchdog.cancel_scope.cancel()
            return box.get("result")

    started = time.perf_counter()
    interrupted = False
    with workdir_handle, install_router().attach(sink):
        stuck: WallBudgetExceeded | None = None
        try:
            # The event loop's own watchdog task cannot run while the loop is stuck in one
            # step; this one ends such a run a moment later.
            with wall_watchdog(
                scenario.budget.wall, grace=WATCHDOG_GRACE_S, progress=lambda: box.get("beats")
            ):
                result = anyio.run(main)
        except BaseException as exc:
            stuck = is_over_budget(exc)
            if stuck is None and not is_interrupt(exc):
                raise
            # Ctrl-C: the runtime has closed its servers on the way out; keep the record.
            interrupted, result = stuck is None, None
        wall = time.perf_counter() - started
        if "runtime" not in box:
            if stuck is not None:
                raise RuntimeFailure(f"the run did not start: {stuck}")
            raise KeyboardInterrupt
        rt: Runtime = box["runtime"]
        if result is None and not interrupted:
            hung = True
            started_agents = {
                e.data["agent_id"]: e.data["agent"] for e in rt.events.of_kind("agent_started")
            }
            for e in rt.events.of_kind("agent_finished"):
                started_agents.pop(e.data["agent_id"], None)
            pending = [str(stuck)] if stuck is not None else []
            pending += [f"agent {name} still running" for name in started_agents.values()]
            pending += [
                f"{len(tools)} call(s) in flight on {server}: {', '.join(tools)}"
                for server, tools in box.get("in_flight", {}).items()
            ]
        spans = exporter.get_finished_spans()
        trace = spans_to_otlp_json(spans) if spans else {"resourceSpans": []}
        _merge_subprocess_spans(trace, list(rt.spans_files.values()))
        trace = regroup_by_service(scrub_addresses(trace))
        # The runtime has closed everything it started: any child left now is a leak. The
        # record is built here, while the subprocesses' files in the work directory remain.
        leaked = sorted(_children() - before)
        record = build_record(
            scenario,
            policy=policy,
            seed=seed,
            mode="live",
            rt=rt,
            trace=trace,
            result=result,
            hung=hung,
            pending=pending,
            leaked=[f"process {pid}" for pid in leaked],
        )
    return judged(
        scenario,
        record,
        strategy="real",
        trace=trace,
        virtual_s=rt.events.events[-1].time if rt.events.events else 0.0,
        wall_s=wall,
        stats={"time_scale": time_scale},
        source=source,
        interrupted=interrupted,
        draws=draws,
    )
