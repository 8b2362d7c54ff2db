"""A runtime under test that is not the harness's own, in the rig.

A scenario that names ``runtime: {adapter: ...}`` or ``runtime: {command: [...]}`` gets the
world the reference runtime gets, built by the rig (``harness.scenarios.rig``) and handed over:
the fake Messages API (its journal), the fake MCP servers (their event records), the fault plan
wired in front of each server and into the API, the vault's secrets, the spans. Then the
runtime does the scenario's work (the main agent's prompt at 0, each scheduled task at its
time, concurrently), and the run is judged from what the rig observed alone: no ``harness.*``
events come from a black box, so oracles that need them say "cannot judge".

- **adapter, sim**: the factory runs on the virtual-time loop; the API client talks to the fake
  through an in-process transport; each server is in memory behind the fault layer.
- **adapter, live**: the fake API on loopback, each server a subprocess (behind ``harness
  interpose`` when the plan has faults for it); time is real, scaled by ``--time-scale``
  (default 1: a runtime's own timeouts are real seconds).
- **command, live only**: one agent process per task (``harness.scenarios.agent_process``),
  started in a session of its own with
  ``ANTHROPIC_BASE_URL``, ``ANTHROPIC_API_KEY`` (no real ``ANTHROPIC_*`` variable passes
  through), ``HARNESS_MCP_CONFIG`` (a file in the ``mcpServers`` shape, also ``{mcp_config}`` in
  its arguments), ``HARNESS_PROMPT`` (also on stdin and ``{prompt}``), ``HARNESS_AGENT``,
  ``HARNESS_TASK``, ``HARNESS_CONTEXT_ID`` and ``HARNESS_SCOPE``; ``{python}`` in the command is
  the harness's interpreter, and it runs in the harness's directory. Its stdout is the answer; its
  exit status, the tail of its stderr and a hang (the wall budget) are recorded; server
  processes it left behind are found by a per-run tag in their environment, recorded and ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness._watchdog import is_over_budget, wall_watchdog
from harness.adapter import RuntimeContext, ServerParams, Task, load_factory
from harness.chaos_random import ChaosRandom
from harness.clock import Clock, LoopClock, ScaledClock
from harness.errors import ConfigError, RuntimeFailure, ScenarioError
from harness.oracles import RunRecord
from harness.oracles.record import BLACK_BOX_EVIDENCE
from harness.runtime.config import RuntimeConfig
from harness.scenarios.agent_process import orphans, run_agent_process
from harness.scenarios.model import Policy, Scenario
from harness.scenarios.rig import FAKE_API_KEY, Rig, server_params
from harness.scenarios.runner import (
    WATCHDOG_GRACE_S,
    RunOutcome,
    drive_sim,
    judged,
    run_attributes,
    sim_config,
)
from harness.telemetry import semconv as sc
from harness.telemetry.otlp_json import flatten

if TYPE_CHECKING:
    from fake_servers.anthropic import FakeAnthropic

__all__ = ["BLACK_BOX", "run_user_live", "run_user_sim", "tasks_of"]

# The reference runtime's own events: a runtime under test emits none of them.
BLACK_BOX = BLACK_BOX_EVIDENCE

_HEARTBEAT_S = 0.05


def tasks_of(scenario: Scenario) -> list[Task]:
    """The scenario's work: the main agent's prompt (if any), then each scheduled task."""
    rt = scenario.runtime
    tasks = []
    if rt.prompt is not None:
        context = rt.agents[rt.main_agent].context_id
        tasks.append(Task("main", rt.main_agent, rt.prompt, context_id=context))
    for t in rt.scheduled:
        tasks.append(
            Task(t.name, t.agent, t.prompt, t.context_id, t.scope, scheduled=True, at=t.at)
        )
    return tasks


@dataclass(eq=False)
class _World:
    """A user runtime's run: the rig, and what the runtime answered and left behind."""

    scenario: Scenario
    policy: Policy
    rig: Rig
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    leaked: list[str] = field(default_factory=list)
    servers: dict[str, ServerParams] = field(default_factory=dict)
    # The first way the runtime failed outside its answers (the run's outcome is then "error").
    error: str | None = None
    # The scenario file, to name in an error.
    source: str | None = None

    def failed(self, why: str) -> None:
        if self.error is None:
            self.error = why

    @property
    def clock(self) -> Clock:
        return self.rig.clock

    async def connect_servers(self, config: RuntimeConfig, *, tag: str | None = None) -> None:
        """Every server of ``config`` started by the rig, as the runtime takes it."""
        for spec in await self.rig.server_specs(config):
            self.servers[spec.name] = server_params(spec, tag=tag)

    def record(
        self, *, mode: str, seed: int, trace: dict[str, Any], hung: bool, pending: list[str]
    ) -> RunRecord:
        scenario = self.scenario
        under = scenario.runtime.adapter or " ".join(scenario.runtime.command or [])
        why = f"the runtime under test ({under}) is a black box: it emits no harness events"
        result: dict[str, Any] = {"main": self.answers.get("main"), "tasks": {}}
        for name, answer in self.answers.items():
            if name != "main":
                result["tasks"][name] = answer
        return RunRecord(
            scenario=scenario.name,
            policy=self.policy,
            seed=seed,
            mode=mode,
            server_events=self.rig.server_events(),
            fault_events=self.rig.fault_events(),
            journal=self.rig.journal(),
            spans=flatten(trace),
            result=result,
            secrets=self.rig.secrets(),
            hung=hung,
            pending=pending,
            leaked=self.leaked,
            params=scenario.oracle_params,
            missing=dict.fromkeys(BLACK_BOX, why),
        )


def _world(
    scenario: Scenario,
    policy: Policy,
    config: RuntimeConfig,
    *,
    clock: Clock,
    seed: int,
    source: str | None,
) -> _World:
    rig = Rig.build(
        config,
        clock=clock,
        rng=ChaosRandom(seed),
        capture_journal=scenario.runtime.capture_content,
    )
    located = source if source and source.endswith((".yaml", ".yml")) else None
    return _World(scenario, policy, rig, source=located)


# -- doing the work ----------------------------------------------------------------------------

# Does one task and writes what happened into its slot (also when cut short).
Runner = Callable[[Task, dict[str, Any]], Awaitable[None]]


async def _do_tasks(world: _World, tasks: list[Task], run: Runner) -> None:
    """Each task at its time, concurrently; the rig's LLM faults meanwhile."""
    clock = world.clock

    async def one(task: Task) -> None:
        if task.at:
            await clock.sleep(task.at - clock.now())
        slot = world.answers[task.name] = {
            "agent": task.agent,
            "started": clock.now(),
            "context_id": task.context_id,
            "declared_scope": task.scope,
            "text": "",
            "stop": "never finished",
        }
        try:
            await run(task, slot)
        finally:
            slot["ended"] = clock.now()
            if slot["stop"] == "error":
                world.failed(_task_error(task, slot))

    async with world.rig.llm_faults(), anyio.create_task_group() as tg:
        for task in tasks:
            tg.start_soon(one, task)


def _task_error(task: Task, slot: dict[str, Any]) -> str:
    """Where and how a task failed, in one line: the exception and the line that raised it,
    or the agent process's exit and the last line of its stderr."""
    why = f"task {task.name}: {slot.get('error_type', '')}{': ' if 'error_type' in slot else ''}"
    why += str(slot.get("error"))
    if slot.get("raised_at"):
        why += f" (raised at {slot['raised_at']})"
    tail = [line for line in slot.get("stderr_tail") or [] if line.strip()]
    if tail:
        why += f"; its stderr ended: {tail[-1].strip()[:200]}"
    return why


class _NotRun(Exception):
    """The runtime under test could not be started: the message says where and why."""


def _failure(exc: BaseException) -> dict[str, Any]:
    """A runtime's exception as the record keeps it: type, message and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
    return {
        "text": "",
        "stop": "error",
        "error_type": type(exc).__qualname__,
        "error": str(exc) or type(exc).__qualname__,
        "raised_at": where,
    }


@contextlib.asynccontextmanager
async def _adapter(world: _World, ctx: RuntimeContext) -> AsyncIterator[Runner]:
    """The scenario's factory, its runtime, and a runner of tasks on it; closed on the way out."""
    spec = world.scenario.runtime.adapter
    assert spec is not None
    try:
        factory = load_factory(spec)
    except ConfigError as exc:
        where = f"{world.source}: " if world.source else ""
        raise _NotRun(f"{where}runtime.adapter {spec}: {exc.message}") from None
    try:
        runtime = await factory(ctx)
    except Exception as exc:
        at = _failure(exc)["raised_at"]
        raise _NotRun(
            f"runtime.adapter {spec}: the factory raised {type(exc).__name__}: {exc}"
            + (f" (raised at {at})" if at else "")
        ) from None
    for method in ("run", "aclose"):
        if not callable(getattr(runtime, method, None)):
            raise _NotRun(
                f"runtime.adapter {spec}: the factory returned {type(runtime).__name__}, "
                f"which has no {method}() (see harness.adapter.AgentRuntime)"
            )

    async def run(task: Task, slot: dict[str, Any]) -> None:
        try:
            answer: object = await runtime.run(task)
        except Exception as exc:
            slot.update(_failure(exc))
            return
        if isinstance(answer, str):
            slot.update(text=answer, stop="end_turn")
        else:
            slot.update(text=str(answer), stop="error", error="run() did not return a str")

    try:
        yield run
    finally:
        with anyio.CancelScope(shield=True):
            try:
                await runtime.aclose()
            except Exception as exc:
                closing = world.answers.setdefault("aclose", {"agent": None, **_failure(exc)})
                world.failed(
                    f"runtime.adapter {spec}: aclose() raised {closing['error_type']}: "
                    f"{closing['error']} (raised at {closing['raised_at']})"
                )


async def _run_adapter(world: _World, ctx: RuntimeContext) -> None:
    """The scenario's work on its adapter runtime; one that cannot start is the run's error."""
    try:
        async with _adapter(world, ctx) as run:
            await _do_tasks(world, tasks_of(world.scenario), run)
    except _NotRun as exc:
        world.failed(str(exc))


def _open_connections(world: _World) -> list[str]:
    """Connections to in-memory servers the runtime left open after aclose()."""
    open_: list[str] = []
    for name, events in world.rig.server_events().items():
        live = {e.get("connection") for e in events if e.get("kind") == "started"}
        live -= {e.get("connection") for e in events if e.get("kind") == "stopped"}
        open_ += [f"{name} connection {c}" for c in sorted(live, key=str)]
    return open_


def run_user_sim(
    scenario: Scenario,
    *,
    policy: Policy,
    seed: int,
    strategy: str = "fifo",
    strategy_params: dict[str, Any] | None = None,
    source: str | None = None,
    draws: dict[str, Any] | None = None,
) -> RunOutcome:
    """Run the scenario's adapter runtime on the virtual-time loop and judge it black-box."""
    if scenario.runtime.command is not None:
        raise ScenarioError(
            "runtime.command runs an agent process, which virtual time cannot reach: "
            "run it with --mode live",
            path=source if source and source.endswith((".yaml", ".yml")) else None,
            field="runtime.command",
        )
    config = sim_config(scenario, policy)
    spec = scenario.runtime.adapter
    assert spec is not None
    clock = LoopClock()
    world = _world(scenario, policy, config, clock=clock, seed=seed, source=source)
    fake_api = world.rig.fake_api
    assert fake_api is not None
    box: dict[str, list[str]] = {}

    async def main() -> None:
        async with world.rig:
            await world.connect_servers(config)
            http_client = _in_process_http(fake_api)
            client = fake_api.async_client(api_key=FAKE_API_KEY)
            ctx = RuntimeContext(
                client=client,
                base_url=str(client.base_url),
                api_key=FAKE_API_KEY,
                http_client=http_client,
                servers=world.servers,
                model=scenario.runtime.model,
                seed=seed,
                clock=clock,
                mode="sim",
                options=scenario.user_options(policy),
            )
            try:
                with _real_world_audit(asyncio.get_running_loop()) as found:
                    box["real_world"] = found
                    await _run_adapter(world, ctx)
            finally:
                with anyio.CancelScope(shield=True):
                    await client.close()
                    await http_client.aclose()
        world.leaked = _open_connections(world)

    with _seeded_global_random(seed):
        drive = drive_sim(
            scenario,
            main,
            policy=policy,
            seed=seed,
            strategy=strategy,
            strategy_params=strategy_params,
        )
    found = box.get("real_world")
    if found:
        raise RuntimeFailure(
            f"runtime.adapter {spec} left the virtual-time loop in sim mode: {found[0]}"
            + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
            + "; a worker thread or a real socket ties the run to real time, so it cannot "
            "replay by seed: run it with --mode live, or make that code asyncio"
        )
    record = world.record(
        mode="sim", seed=seed, trace=drive.trace, hung=drive.hung, pending=drive.pending
    )
    return drive.judged(
        scenario, record, strategy=strategy, source=source, draws=draws or {}, error=world.error
    )


@contextlib.contextmanager
def _real_world_audit(loop: asyncio.AbstractEventLoop) -> Iterator[list[str]]:
    """Every worker thread, executor job and socket connection started meanwhile, each named
    with the code that started it (sim mode must not wait on the real world)."""
    found: list[str] = []
    thread_start = threading.Thread.start
    connect = socket.socket.connect
    run_in_executor = loop.run_in_executor

    def note(what: str) -> None:
        frames = [
            f"{f.filename}:{f.lineno}"
            for f in traceback.extract_stack()[:-2]
            if not f.filename.startswith(_STDLIB)
        ]
        # The innermost frame, and the innermost one of the project's own code (not a library).
        own = [f for f in frames if "site-packages" not in f and not f.startswith(_HARNESS)]
        where = f" from {frames[-1]}" if frames else ""
        if own and own[-1] != frames[-1]:
            where += f", called by {own[-1]}"
        found.append(f"{what}{where}")

    def start(thread: threading.Thread) -> None:
        note(f"a thread ({thread.name})")
        thread_start(thread)

    def sock_connect(sock: socket.socket, address: Any) -> None:
        note(f"a socket connection to {address}")
        connect(sock, address)

    def executor(pool: Any, func: Callable[..., Any], *args: Any) -> Any:
        note(f"an executor job ({getattr(func, '__qualname__', func)})")
        return run_in_executor(pool, func, *args)

    threading.Thread.start = start  # type: ignore[method-assign,assignment]
    socket.socket.connect = sock_connect  # type: ignore[method-assign,assignment]
    loop.run_in_executor = executor  # type: ignore[method-assign,assignment]
    try:
        yield found
    finally:
        threading.Thread.start = thread_start  # type: ignore[method-assign]
        socket.socket.connect = connect  # type: ignore[method-assign]
        loop.run_in_executor = run_in_executor  # type: ignore[method-assign]


_STDLIB = str(Path(threading.__file__).parent)
_HARNESS = str(Path(__file__).parents[1])


def _in_process_http(fake_api: FakeAnthropic) -> Any:
    """An ``httpx2.AsyncClient`` that reaches the fake API in process (no socket)."""
    import httpx2

    from fake_servers.anthropic.app import _IN_PROCESS_BASE_URL

    return httpx2.AsyncClient(
        transport=fake_api.in_process_transport(), base_url=_IN_PROCESS_BASE_URL
    )


@contextlib.contextmanager
def _seeded_global_random(seed: int) -> Iterator[None]:
    """Third-party code draws retry jitter and ids from the ``random`` module: seed it for the
    run (so a seed replays), then give the process its own state back."""
    import random

    state = random.getstate()
    random.seed(ChaosRandom(seed).fork("global-random").getrandbits(64))
    try:
        yield
    finally:
        random.setstate(state)


# -- live ----------------------------------------------------------------------------------------


def run_user_live(
    scenario: Scenario,
    *,
    policy: Policy,
    seed: int,
    time_scale: float | None,
    source: str | None = None,
    draws: dict[str, Any] | None = None,
) -> RunOutcome:
    """Run the scenario's adapter or agent process for real and judge it black-box."""
    from harness.scenarios._live_setup import live_config
    from harness.telemetry.components import merge_span_files, regroup_by_service, stamp_resources
    from harness.telemetry.otlp_json import scrub_addresses, spans_to_otlp_json
    from harness.telemetry.routing import SpanSink, install_router

    scale = 1.0 if time_scale is None else time_scale
    config = live_config(scenario, policy)
    # A runtime under test reaches every fake server as a process (a command it can start).
    servers = {
        name: s.model_copy(update={"transport": "stdio"}) if s.fake is not None else s
        for name, s in config.servers.items()
    }
    config = config.model_copy(update={"servers": servers})
    clock = ScaledClock(scale, held=True)
    world = _world(scenario, policy, config, clock=clock, seed=seed, source=source)
    rig, fake_api = world.rig, world.rig.fake_api
    assert fake_api is not None
    exporter = InMemorySpanExporter()
    sink = SpanSink([SimpleSpanProcessor(exporter)], one_trace=True)
    tag = uuid.uuid4().hex
    box: dict[str, Any] = {}

    async def main() -> None:
        # Beats while the loop runs, cleanup included: the process watchdog fires only when
        # a step blocks the loop.
        async with anyio.create_task_group() as beating:
            beating.start_soon(_heartbeat, box)
            await body()
            beating.cancel_scope.cancel()

    async def body() -> None:
        async with rig:
            workdir = rig.work_directory()
            await world.connect_servers(config, tag=tag)
            base_url = await rig.stack.enter_async_context(fake_api.serve())
            clock.start()
            box["origin_ns"] = time.time_ns()
            rig.origin = box["origin_ns"] / 1e9
            with anyio.move_on_after(scenario.budget.wall) as watchdog:
                if scenario.runtime.command is not None:
                    runner = _command_runner(world, workdir, base_url)
                    await _do_tasks(world, tasks_of(scenario), runner)
                else:
                    await _live_adapter(world, base_url, seed)
            box["hung"] = watchdog.cancelled_caught
            box["virtual"] = clock.now()
            box["orphans"] = left = await orphans(tag)
            world.leaked += [f"server process {pid} (outlived the runtime)" for pid in left]
            box["trace_files"] = list(rig.spans_files.values())
            # Read before the files go.
            box["server_events"] = rig.server_events()
            box["fault_events"] = rig.fault_events()
            box["started"] = True

    from harness.scenarios._live_setup import children as _children

    before = _children()
    started = time.perf_counter()
    interrupted = False
    stuck = None
    with install_router().attach(sink):
        try:
            # The loop's own deadline cannot fire while a runtime blocks it in one step (a
            # synchronous call); this one ends such a run a moment after the budget.
            with wall_watchdog(
                scenario.budget.wall, grace=WATCHDOG_GRACE_S, progress=lambda: box.get("beats")
            ):
                anyio.run(main)
        except KeyboardInterrupt as exc:
            stuck = is_over_budget(exc)
            interrupted = stuck is None
        trace = spans_to_otlp_json(exporter.get_finished_spans())
        trace = trace if trace.get("resourceSpans") else {"resourceSpans": []}
    wall = time.perf_counter() - started
    merge_span_files(trace, [p for p in box.get("trace_files", []) if p.exists()])
    trace = regroup_by_service(scrub_addresses(trace))
    stamped = run_attributes(scenario.name, policy, seed, mode="live", strategy="real")
    stamped[sc.HARNESS_TIME_SCALE] = scale
    if "origin_ns" in box:
        stamped[sc.HARNESS_RUN_ORIGIN] = box["origin_ns"]
    stamp_resources(trace, stamped)
    others = _children() - before - set(box.get("orphans", []))
    world.leaked += [f"process {pid}" for pid in sorted(others)]
    hung = bool(box.get("hung")) or stuck is not None
    pending = [str(stuck)] if stuck is not None else []
    pending += [
        f"task {t.name} had not answered within the {scenario.budget.wall:g} s wall budget"
        for t in tasks_of(scenario)
        if t.name not in world.answers
    ]
    record = world.record(mode="live", seed=seed, trace=trace, hung=hung, pending=pending)
    record.server_events = box.get("server_events", record.server_events)
    record.fault_events = box.get("fault_events", record.fault_events)
    record.time_scale = scale
    return judged(
        scenario,
        record,
        strategy="real",
        trace=trace,
        virtual_s=box.get("virtual", 0.0),
        wall_s=wall,
        stats={"time_scale": scale},
        source=source,
        interrupted=interrupted,
        draws=draws or {},
        error=world.error,
    )


async def _heartbeat(box: dict[str, Any]) -> None:
    """Beats while the event loop runs; the process watchdog reads them."""
    while True:
        box["beats"] = box.get("beats", 0) + 1
        await anyio.sleep(_HEARTBEAT_S)


async def _live_adapter(world: _World, base_url: str, seed: int) -> None:
    import anthropic

    scenario = world.scenario
    client = anthropic.AsyncAnthropic(api_key=FAKE_API_KEY, base_url=base_url)
    ctx = RuntimeContext(
        client=client,
        base_url=base_url,
        api_key=FAKE_API_KEY,
        http_client=None,
        servers=world.servers,
        model=scenario.runtime.model,
        seed=seed,
        clock=world.clock,
        mode="live",
        options=scenario.user_options(world.policy),
    )
    try:
        await _run_adapter(world, ctx)
    finally:
        with anyio.CancelScope(shield=True):
            await client.close()


def _command_runner(world: _World, workdir: Path, base_url: str) -> Runner:
    """Run one agent process per task (see the module's docstring for its contract)."""
    scenario = world.scenario
    command = scenario.runtime.command
    assert command is not None
    mcp_config = workdir / "mcp.json"
    entries = {name: params.to_mcp_config() for name, params in world.servers.items()}
    mcp_config.write_text(json.dumps({"mcpServers": entries}, indent=2), encoding="utf-8")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    extra = scenario.user_env(world.policy)

    async def run(task: Task, slot: dict[str, Any]) -> None:
        argv = [
            part.replace("{mcp_config}", str(mcp_config))
            .replace("{prompt}", task.prompt)
            .replace("{python}", sys.executable)
            for part in command
        ]
        env = {
            **inherited,
            **extra,
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": FAKE_API_KEY,
            "HARNESS_MCP_CONFIG": str(mcp_config),
            "HARNESS_PROMPT": task.prompt,
            "HARNESS_AGENT": task.agent,
            "HARNESS_TASK": task.name,
            "HARNESS_CONTEXT_ID": task.context_id or "",
            "HARNESS_SCOPE": task.scope or "",
        }
        try:
            await run_agent_process(argv, env=env, prompt=task.prompt, slot=slot)
        except RuntimeFailure as exc:  # it did not start
            slot.update(stop="error", error=str(exc))

    return run
