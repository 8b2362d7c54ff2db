"""Live mode: the same scenario for real, to prove a bug is not an artefact of the simulation.

Fake MCP servers run as real stdio subprocesses (the scenario may ask for streamable HTTP, and
for the TCP proxy in front of it), the
fake Messages API is served on a loopback port and reached over TCP by the real SDK, and time
is real, scaled by ``time_scale`` (0.01 turns a 150 s timeout into 1.5 s): every scenario time
(tool latencies, model latencies, call timeouts, scheduled tasks, fault times) is multiplied by
it. The scenario's faults act for real: kills and freezes through the stdio interposer, toxics
on the proxy's sockets, ``llm`` faults in the served fake API. Distributions are drawn from the
seed as in sim mode.

Start-up is not scenario time: every server is spawned and initialized (a ``harness.start_up``
span) before the scenario's clock starts, so a 150 s timeout fires at 150 s on the run's clock
and the start-up is reported apart (``stats.startup_s``, real seconds). A time scale at which
the scenario's schedule (scheduled tasks, timed faults) cannot fit the wall budget is refused
up front; a run whose scheduled tasks still did not fire is judged inconclusive, with the
reason. The scenario's wall budget is the watchdog (start-up gets as much again); a run that
hits it is reported as hung, with what was still pending, and everything it started is closed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness._signals import is_interrupt
from harness._watchdog import WallBudgetExceeded, is_over_budget, wall_watchdog
from harness.chaos_random import ChaosRandom
from harness.clock import ScaledClock
from harness.errors import ConfigError, RuntimeFailure
from harness.oracles import EVIDENCE
from harness.runtime.runtime import RunResult, Runtime
from harness.scenarios._live_setup import children as _children
from harness.scenarios._live_setup import live_config
from harness.scenarios._record import build_record
from harness.scenarios.model import Policy, Scenario
from harness.scenarios.rig import Rig, reference_runtime
from harness.scenarios.runner import WATCHDOG_GRACE_S, RunOutcome, judged, run_attributes
from harness.telemetry import semconv as sc
from harness.telemetry.components import merge_span_files, regroup_by_service, stamp_resources
from harness.telemetry.otlp_json import scrub_addresses, spans_to_otlp_json
from harness.telemetry.routing import SpanSink, install_router

__all__ = ["auto_time_scale", "check_time_scale", "live_config", "run_scenario_live"]


_HEARTBEAT_S = 0.05


def auto_time_scale(scenario: Scenario) -> float:
    """0.01, or less when the scenario's virtual budget would not fit half its wall budget
    (a task scheduled thirteen hours in must still run within the watchdog)."""
    return min(0.01, 0.5 * scenario.budget.wall / scenario.budget.virtual)


def _schedule(scenario: Scenario) -> list[tuple[float, str]]:
    """What the scenario schedules at a fixed time: (scenario seconds, what), in order."""
    planned = [(task.at, f"task {task.name}") for task in scenario.runtime.scheduled]
    for fault in scenario.faults:
        at = getattr(fault, "at", None)
        if at is not None:
            planned.append((float(at), f"fault {fault.label}"))
    return sorted(planned)


def check_time_scale(scenario: Scenario, time_scale: float, *, field: str = "--time-scale") -> None:
    """Refuse a time scale at which the scenario's schedule cannot fit its wall budget: the
    run could only end with the watchdog, before what it tests has happened. ``field`` names
    where the scale came from (the flag, or the scenario's ``budget.time_scale``)."""
    planned = _schedule(scenario)
    if not planned:
        return
    at, what = planned[-1]
    wall = scenario.budget.wall
    if at * time_scale < wall:
        return
    fits = 0.5 * wall / at
    raise ConfigError(
        f"{scenario.name}'s schedule reaches {at:g} s ({what}): {at * time_scale:.3g} s of "
        f"real time at this scale, past its {wall:g} s wall budget; use {field} "
        f"{fits:.2g} or less, or leave it out to fit the schedule",
        field=field,
        value=time_scale,
    )


def _unfired(scenario: Scenario, rt: Runtime, time_scale: float) -> str | None:
    """Why part of the scenario never ran: its scheduled tasks that had not fired, or None."""
    fired = {e.data.get("task") for e in rt.events.of_kind("task_fired")}
    tasks = scenario.runtime.scheduled
    unfired = [f"task {t.name} (at {t.at:g} s)" for t in tasks if t.name not in fired]
    if not unfired:
        return None
    return (
        f"the schedule did not fit: {', '.join(unfired)} had not fired when the run ended "
        f"({scenario.budget.wall:g} s wall budget, time scale {time_scale:.3g})"
    )


def _still_starting(rt: Runtime) -> list[str]:
    """The servers start-up had not connected when the watchdog ended it."""
    connected = {e.data["server"] for e in rt.events.of_kind("connected")}
    return [name for name in rt.host.servers if name not in connected]


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

    ``time_scale`` (``--time-scale``) defaults to the scenario's ``budget.time_scale``, else
    to ``auto_time_scale(scenario)``; one given explicitly or by the scenario must fit the
    scenario's schedule (``check_time_scale``). A scenario whose runtime under test is an
    adapter or an agent process runs in ``harness.scenarios.user_runtime`` (time scale 1 by default:
    that runtime's own timeouts are real seconds)."""
    field = "--time-scale"
    if time_scale is None and scenario.budget.time_scale is not None:
        time_scale, field = scenario.budget.time_scale, "budget.time_scale"
    if scenario.runtime.under_test != "reference":
        from harness.scenarios.user_runtime import run_user_live

        if time_scale is not None and not 0 < time_scale <= 10:
            raise ConfigError("must be in (0, 10]", field="--time-scale", value=time_scale)
        resolved, draws = scenario.resolve(seed)
        return run_user_live(
            resolved, policy=policy, seed=seed, time_scale=time_scale, source=source, draws=draws
        )
    explicit = time_scale is not None
    if time_scale is None:
        time_scale = auto_time_scale(scenario)
    if not 0 < time_scale <= 10:
        raise ConfigError("must be in (0, 10]", field="--time-scale", value=time_scale)
    scenario, draws = scenario.resolve(seed)
    if explicit:
        check_time_scale(scenario, time_scale, field=field)
    config = live_config(scenario, policy)
    rng = ChaosRandom(seed)
    box: dict[str, Any] = {}
    exporter = InMemorySpanExporter()
    sink = SpanSink([SimpleSpanProcessor(exporter)], one_trace=True)
    before = _children()
    hung, pending = False, []
    result: RunResult | None = None
    workdir_handle = tempfile.TemporaryDirectory(prefix="harness-live-")
    workdir = Path(workdir_handle.name)

    async def heartbeat() -> None:
        # Beats while the event loop runs (the runtime's teardown included); the process
        # watchdog reads them.
        while True:
            box["beats"] = box.get("beats", 0) + 1
            await anyio.sleep(_HEARTBEAT_S)

    async def main() -> RunResult | None:
        async with anyio.create_task_group() as beating:
            beating.start_soon(heartbeat)
            try:
                outcome = await scenario_run()
            finally:
                beating.cancel_scope.cancel()
        return outcome

    async def scenario_run() -> RunResult | None:
        clock = ScaledClock(time_scale, held=True)
        async with reference_runtime(config, clock=clock, rng=rng, workdir=workdir) as rig:
            rt = rig.rt
            box["rig"] = rig
            started = anyio.Event()
            async with anyio.create_task_group() as watchdog:

                async def expire() -> None:
                    with anyio.move_on_after(max(scenario.budget.start_up, scenario.budget.wall)):
                        await started.wait()
                    if started.is_set():
                        await anyio.sleep(scenario.budget.wall)
                    # What is pending, read before the cancellation unwinds the calls.
                    box["in_flight"] = _calls_in_flight(rt)
                    watchdog.cancel_scope.cancel()

                watchdog.start_soon(expire)
                began = time.perf_counter()
                tracer = otel_trace.get_tracer("harness.scenarios")
                # Spawn and initialize every server before the scenario's clock starts. A
                # server the fault plan breaks from the start is left to the agents, which
                # meet the failure as they would have (and record it).
                attributes = {sc.HARNESS_TIME_SCALE: time_scale}
                with tracer.start_as_current_span("harness.start_up", attributes=attributes):
                    try:
                        await rt.host.list_tools()
                    except Exception as exc:
                        box["startup_error"] = f"{type(exc).__name__}: {exc}"
                box["startup"] = time.perf_counter() - began
                clock.start()
                box["origin_ns"] = time.time_ns()
                # Server processes' and interposers' records go on the run's clock from here.
                rig.origin = box["origin_ns"] / 1e9
                started.set()
                box["result"] = await rig.run()
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
        if "rig" not in box:
            if stuck is not None:
                raise RuntimeFailure(f"the run did not start: {stuck}")
            raise KeyboardInterrupt
        rig: Rig = box["rig"]
        rt = rig.rt
        if result is None and not interrupted:
            hung = True
            started_agents = {
                e.data["agent_id"]: e.data["agent"] for e in rt.events.of_kind("agent_started")
            }
            for e in rt.events.of_kind("agent_finished"):
                # An agent the watchdog's cancellation ended was still running.
                if e.data.get("stop") != "interrupted":
                    started_agents.pop(e.data["agent_id"], None)
            pending = [str(stuck)] if stuck is not None else []
            pending += [f"agent {name} still running" for name in started_agents.values()]
            if "origin_ns" not in box:
                starting = _still_starting(rt)
                budget = max(scenario.budget.start_up, scenario.budget.wall)
                pending.append(
                    f"servers still starting after the {budget:g} s start-up budget: "
                    f"{', '.join(starting) or 'none'}; no agent started"
                )
            pending += [
                f"{len(tools)} call(s) in flight on {server}: {', '.join(tools)}"
                for server, tools in box.get("in_flight", {}).items()
            ]
        spans = exporter.get_finished_spans()
        trace = spans_to_otlp_json(spans) if spans else {"resourceSpans": []}
        merge_span_files(trace, list(rig.spans_files.values()))
        trace = regroup_by_service(scrub_addresses(trace))
        stamped = run_attributes(scenario.name, policy, seed, mode="live", strategy="real")
        stamped[sc.HARNESS_TIME_SCALE] = time_scale
        if "origin_ns" in box:
            stamped[sc.HARNESS_RUN_ORIGIN] = box["origin_ns"]
        stamp_resources(trace, stamped)
        # The runtime has closed everything it started: any child left now is a leak. The
        # record is built here, while the subprocesses' files in the work directory remain.
        leaked = sorted(_children() - before)
        record = build_record(
            scenario,
            policy=policy,
            seed=seed,
            mode="live",
            rig=rig,
            trace=trace,
            result=result,
            hung=hung,
            pending=pending,
            leaked=[f"process {pid}" for pid in leaked],
        )
        record.time_scale = time_scale
        why = _unfired(scenario, rt, time_scale) if "origin_ns" in box else None
        if why is not None and (hung or interrupted):
            # What the scenario did not get to do is not in the record: no verdict on it.
            for key in EVIDENCE.keys() - {"spans", "secrets", "connections"}:
                record.missing[key] = why
    return judged(
        scenario,
        record,
        strategy="real",
        trace=trace,
        virtual_s=rt.events.events[-1].time if rt.events.events else 0.0,
        wall_s=wall,
        stats={
            "time_scale": time_scale,
            "startup_s": box.get("startup"),
            **({"startup_error": box["startup_error"]} if "startup_error" in box else {}),
        },
        source=source,
        interrupted=interrupted,
        draws=draws,
    )
