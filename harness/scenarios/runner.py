"""Run one scenario under one policy and seed, in sim mode, and judge it.

The whole run (runtime, fake API, fake MCP servers) executes on the deterministic virtual-time
loop: the same scenario, policy and seed give the same schedule, the same outcome and the same
trace, span timestamps included (they are on the virtual clock, from the scenario's ``start``).
A randomized scenario's distributions are drawn from the seed first; the draws are part of the
outcome (and of ``run.json``), and ``overrides`` replaces single draws (shrinking uses it).
A watchdog (the scenario's virtual and wall budgets) ends a run that hangs; it is then reported
as hung with the tasks still pending, and everything it started is closed.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness._signals import is_interrupt
from harness._watchdog import is_over_budget, wall_watchdog
from harness.chaos_random import ChaosRandom
from harness.clock import LoopClock
from harness.errors import ScenarioError
from harness.oracles import RunRecord, Verdict, check
from harness.run_file import Outcome
from harness.runtime.config import RuntimeConfig
from harness.runtime.runtime import RunResult
from harness.scenarios._record import build_record
from harness.scenarios.model import Policy, Scenario
from harness.scenarios.rig import Rig, reference_runtime
from harness.sim import SimStalled, run_sim
from harness.telemetry import semconv as sc
from harness.telemetry.components import regroup_by_service, stamp_resources
from harness.telemetry.otlp_json import scrub_addresses, spans_to_otlp_json
from harness.telemetry.routing import SpanSink, install_router

__all__ = [
    "WATCHDOG_GRACE_S",
    "RunOutcome",
    "SimDrive",
    "drive_sim",
    "run_identity",
    "run_reference",
    "sim_config",
]

# How long a run past its wall budget may be stuck inside one step before the watchdog ends it.
WATCHDOG_GRACE_S = 1.0


@dataclass(slots=True)
class RunOutcome:
    """A judged run: what happened, what was expected, and why."""

    scenario: str
    policy: Policy
    seed: int
    strategy: str
    outcome: Outcome
    expected: Outcome
    verdicts: list[Verdict]
    deciding: Verdict | None
    virtual_s: float
    wall_s: float
    record: RunRecord
    trace: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    run_dir: Path | None = None
    interrupted: bool = False
    draws: dict[str, Any] = field(default_factory=dict)
    # What went wrong with the runtime under test when the outcome is "error" (located).
    error: str | None = None

    @property
    def met(self) -> bool:
        return self.outcome == self.expected

    def replay_command(self) -> str:
        target = self.source or self.scenario
        command = f"harness run {target} --policy {self.policy} --seed {self.seed}"
        if self.record.mode == "live":
            command += f" --mode live --time-scale {self.stats.get('time_scale', 0.01):.3g}"
        elif self.strategy != "fifo":
            command += f" --strategy {self.strategy}"
        return command

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "policy": self.policy,
            "seed": self.seed,
            "mode": self.record.mode,
            "strategy": self.strategy,
            "outcome": self.outcome,
            "expected": self.expected,
            "met": self.met,
            "deciding_oracle": self.deciding.name if self.deciding else None,
            "explanation": self.deciding.explanation if self.deciding else None,
            "error": self.error,
            "oracles": [v.to_dict() for v in self.verdicts],
            "virtual_s": self.virtual_s,
            "wall_s": self.wall_s,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "hung": self.record.hung,
            "interrupted": self.interrupted,
            "draws": self.draws,
            "trace_id": self.trace_id,
        }

    @property
    def trace_id(self) -> str | None:
        """The run's trace id (one trace per run)."""
        from harness.telemetry.timeshift import trace_ids

        ids = trace_ids(self.trace)
        return ids[0] if ids else None


def judge(
    scenario: Scenario, policy: Policy, verdicts: list[Verdict]
) -> tuple[Outcome, Outcome, Verdict | None]:
    """The outcome, the expected outcome and the deciding verdict. An oracle that could not
    judge makes the run "inconclusive" when the judgement depends on it: a verdict without its
    evidence is neither a reproduction nor a pass."""
    by_name = {v.name: v for v in verdicts}
    unjudged = [v for v in verdicts if not v.judged]
    if policy == "buggy":
        expected: Outcome = "reproduced"
        bug_oracles = [by_name[n] for n in scenario.expect.buggy]
        held = next((v for v in bug_oracles if v.judged and v.holds), None)
        blind = next((v for v in bug_oracles if not v.judged), None)
        if held is None and blind is not None:
            return "inconclusive", expected, blind
        reproduced = held is None
        deciding = bug_oracles[0] if reproduced else held
        if scenario.expect.reproduces == "sometimes" and not reproduced:
            # A randomized bug shows for some seeds only: a seed without it is expected too.
            return "held", "held", deciding
        return ("reproduced" if reproduced else "unexpected"), expected, deciding
    failing = [v for v in verdicts if v.fails]
    if failing:
        return "unexpected", "held", failing[0]
    if unjudged:
        return "inconclusive", "held", unjudged[0]
    return "held", "held", by_name[scenario.expect.buggy[0]]


class _VirtualNanos:
    """Span timestamps on the run's virtual clock, from the scenario's start."""

    def __init__(self, epoch_ns: int) -> None:
        self._epoch = epoch_ns
        self._last = epoch_ns

    def __call__(self) -> int:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._last
        self._last = self._epoch + round(loop.time() * 1e9)
        return self._last


def run_identity(
    scenario: Scenario,
    *,
    policy: Policy,
    seed: int,
    mode: str,
    strategy: str,
    params: Mapping[str, Any] | None = None,
) -> str:
    """A digest of everything that identifies a run: the scenario as run (its content, with
    every draw), the policy, seed, mode and scheduling strategy. Trace and span ids are drawn
    from it, so two different runs never share a trace id or a span id (pushed to one
    collector they stay apart), and the same run gets the same ids again (replay compares
    them)."""
    key = {
        "scenario": scenario.content_hash(),
        "policy": policy,
        "seed": seed,
        "mode": mode,
        "strategy": strategy,
        "params": dict(params or {}),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def run_attributes(
    scenario: str, policy: str, seed: int, *, mode: str, strategy: str
) -> dict[str, str | int | float | bool]:
    """The resource attributes that name a run in its trace."""
    return {
        sc.HARNESS_SCENARIO: scenario,
        sc.HARNESS_POLICY: policy,
        sc.HARNESS_SEED: seed,
        sc.HARNESS_MODE: mode,
        sc.HARNESS_STRATEGY: strategy,
    }


def sim_config(scenario: Scenario, policy: Policy) -> RuntimeConfig:
    """The scenario's runtime config for sim mode: every fake server in memory (a server the
    scenario puts on streamable HTTP or behind the proxy gets its faults and toxics on the
    in-process transport instead). A server that runs a command or is reached by URL is a
    ``ScenarioError``: sim mode never starts a program a scenario names."""
    config = scenario.runtime_config(policy)
    for name, server in config.servers.items():
        if server.fake is None:
            kind = "runs a command" if server.command is not None else "is reached by URL"
            raise ScenarioError(
                f"server {name!r} {kind}: sim mode runs the built-in fake servers in memory "
                "only (virtual time does not cross process boundaries); use --mode live",
                field=f"servers.{name}",
            )
    if all(s.transport == "memory" for s in config.servers.values()):
        return config
    servers = {
        name: s.model_copy(update={"transport": "memory", "proxy": False}) if s.fake else s
        for name, s in config.servers.items()
    }
    return config.model_copy(update={"servers": servers})


def run_reference(
    scenario: Scenario,
    *,
    policy: Policy,
    seed: int,
    strategy: str,
    strategy_params: dict[str, Any] | None,
    source: str | None,
    draws: dict[str, Any],
) -> RunOutcome:
    """Run the reference runtime on ``scenario`` (its distributions already drawn) in sim
    mode and judge it (``harness.scenarios.run.run_scenario`` is the entry point)."""
    try:
        config = sim_config(scenario, policy)
    except ScenarioError as exc:
        if exc.path is not None or source is None or not source.endswith((".yaml", ".yml")):
            raise
        raise ScenarioError(exc.message, path=source, field=exc.field) from None
    clock = LoopClock()
    rng = ChaosRandom(seed)
    box: dict[str, Any] = {}

    async def main() -> RunResult:
        async with reference_runtime(config, clock=clock, rng=rng) as rig:
            box["rig"] = rig
            return await rig.run()

    drive = drive_sim(
        scenario,
        main,
        policy=policy,
        seed=seed,
        strategy=strategy,
        strategy_params=strategy_params,
    )
    rig: Rig | None = box.get("rig")
    record = build_record(
        scenario,
        policy=policy,
        seed=seed,
        mode="sim",
        rig=rig,
        trace=drive.trace,
        result=drive.value,
        hung=drive.hung,
        pending=drive.pending,
        leaked=[f"{c.server} generation {c.generation}" for c in rig.rt.host.live_connections()]
        if rig
        else [],
    )
    return drive.judged(scenario, record, strategy=strategy, source=source, draws=draws)


@dataclass(slots=True)
class SimDrive:
    """What driving one sim run left: ``main``'s value (None when it did not finish), whether
    it hung (and what was pending), was interrupted, its times, loop stats and trace."""

    value: Any = None
    hung: bool = False
    pending: list[str] = field(default_factory=list)
    interrupted: bool = False
    virtual: float = 0.0
    wall: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    trace: dict[str, Any] = field(default_factory=lambda: {"resourceSpans": []})

    def judged(
        self,
        scenario: Scenario,
        record: RunRecord,
        *,
        strategy: str,
        source: str | None,
        draws: dict[str, Any],
        error: str | None = None,
    ) -> RunOutcome:
        """The run judged by the scenario's oracles on ``record``."""
        return judged(
            scenario,
            record,
            strategy=strategy,
            trace=self.trace,
            virtual_s=self.virtual,
            wall_s=self.wall,
            stats=self.stats,
            source=source,
            interrupted=self.interrupted,
            draws=draws,
            error=error,
        )


def drive_sim(
    scenario: Scenario,
    main: Callable[[], Awaitable[Any]],
    *,
    policy: Policy,
    seed: int,
    strategy: str,
    strategy_params: dict[str, Any] | None = None,
) -> SimDrive:
    """Run ``main()`` on the virtual-time loop under the scenario's budgets and watchdog, with
    every span of the run collected into one trace on the virtual clock. A hang and Ctrl-C are
    reported in the result; any other exception of ``main`` propagates."""
    exporter = InMemorySpanExporter()
    epoch_ns = int(scenario.start.timestamp() * 1e9)
    identity = run_identity(
        scenario, policy=policy, seed=seed, mode="sim", strategy=strategy, params=strategy_params
    )
    sink = SpanSink(
        [SimpleSpanProcessor(exporter)],
        rng=ChaosRandom(seed, name=f"trace-ids/{identity}"),
        time_ns=_VirtualNanos(epoch_ns),
        one_trace=True,
    )
    drive = SimDrive()
    started = time.perf_counter()
    with _run_objects_only():
        with install_router().attach(sink):
            try:
                # The loop checks the wall budget between rounds; the watchdog ends a run stuck
                # inside one step (it fires a moment later, so the loop's own check comes first).
                with wall_watchdog(
                    scenario.budget.wall, grace=WATCHDOG_GRACE_S, progress=_loop_steps
                ) as dog:
                    sim = run_sim(
                        main,
                        seed=seed,
                        strategy=strategy,
                        strategy_params=strategy_params,
                        virtual_time_limit=scenario.budget.virtual,
                        wall_time_limit=scenario.budget.wall,
                    )
            except SimStalled as stalled:
                drive.hung = True
                drive.pending = [str(dog.fired)] if dog.fired is not None else []
                drive.pending += [task.describe() for task in stalled.pending]
                drive.virtual = stalled.virtual_time
                if stalled.stats is not None:
                    drive.stats = stalled.stats.to_dict()
            except BaseException as exc:
                over = is_over_budget(exc)
                if over is not None:
                    drive.hung, drive.pending = True, [str(over)]
                elif is_interrupt(exc):
                    # Ctrl-C: run_sim has cancelled and closed everything; keep what was recorded.
                    drive.interrupted = True
                else:
                    raise
            else:
                drive.value = sim.value
                drive.virtual = sim.stats.virtual_elapsed
                drive.stats = sim.stats.to_dict()
        drive.wall = time.perf_counter() - started
        if drive.hung:
            # A run ended mid-round (its budget, or the watchdog inside one step) leaves
            # coroutines it had created but not yet started: collected here, and quietly,
            # since nothing will ever run them.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
                gc.collect()
    spans = exporter.get_finished_spans()
    if spans:
        drive.trace = regroup_by_service(
            scrub_addresses(spans_to_otlp_json(spans)), copy_spans=False
        )
    stamp_resources(
        drive.trace,
        run_attributes(scenario.name, policy, seed, mode="sim", strategy=strategy)
        | {sc.HARNESS_RUN_ORIGIN: epoch_ns},
    )
    return drive


_frozen_lock = threading.Lock()
_runs_in_progress = 0
_we_froze = False


@contextmanager
def _run_objects_only() -> Iterator[None]:
    """While sim runs are in progress, the objects that existed before the first of them are
    out of the garbage collector's sight (``gc.freeze``): a collection during a run, and the
    one that ends a hung run, go over the run's own objects instead of the whole heap (the
    imported libraries are some 200k objects, and a full collection of them takes about as long
    as a whole run). The last run to end hands them back (``gc.unfreeze``); an interpreter
    where someone else froze objects is left as it is."""
    global _runs_in_progress, _we_froze
    with _frozen_lock:
        if _runs_in_progress == 0 and gc.get_freeze_count() == 0:
            gc.freeze()
            _we_froze = True
        _runs_in_progress += 1
    try:
        yield
    finally:
        with _frozen_lock:
            _runs_in_progress -= 1
            if _runs_in_progress == 0 and _we_froze:
                gc.unfreeze()
                _we_froze = False


def _loop_steps() -> object:
    """How many callbacks the running sim loop has run (unchanged: it is stuck in one)."""
    try:
        return getattr(asyncio.get_running_loop(), "steps", None)
    except RuntimeError:
        return None


def judged(
    scenario: Scenario,
    record: RunRecord,
    *,
    strategy: str,
    trace: dict[str, Any],
    virtual_s: float,
    wall_s: float,
    stats: dict[str, Any],
    source: str | None,
    interrupted: bool,
    draws: dict[str, Any],
    error: str | None = None,
) -> RunOutcome:
    """Check the scenario's oracles on ``record`` and judge the run (sim or live). A run
    whose runtime under test failed (``error``) is an "error" whatever the oracles say: their
    verdicts are kept for reading, but a crash is neither a reproduction nor a pass."""
    policy: Policy = record.policy  # type: ignore[assignment]
    verdicts = check(record, scenario.oracle_names)
    outcome, expected, deciding = judge(scenario, policy, verdicts)
    if error is not None:
        outcome = "error"
    return RunOutcome(
        scenario=scenario.name,
        policy=policy,
        seed=record.seed,
        strategy=strategy,
        outcome="interrupted" if interrupted else outcome,
        expected=expected,
        verdicts=verdicts,
        deciding=deciding,
        virtual_s=virtual_s,
        wall_s=wall_s,
        record=record,
        trace=trace,
        stats=stats,
        source=source,
        interrupted=interrupted,
        draws=draws,
        error=error,
    )
