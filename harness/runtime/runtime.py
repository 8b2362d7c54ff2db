"""``Runtime``: the reference agent runtime, assembled from a ``RuntimeConfig`` and run.

It is given what a real deployment has: an ``anthropic.AsyncAnthropic`` client, the MCP servers
to reach (``ServerSpec``: a command, a URL or an in-process server, with a transport wrapper),
a clock and its config. It owns the shared ``MCPHostManager``, the compactor and the scope
policy, runs the main agent and the scheduled tasks concurrently on the clock, and closes every
connection (and subprocess) on the way out, faults and cancellation included. It builds no world
of its own: the fake API, fake servers, fault wiring and secrets are the rig's
(``harness.scenarios.rig``), which hands them over as a deployment would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import anthropic
import anyio
from opentelemetry import metrics, trace

from harness.chaos_random import ChaosRandom
from harness.clock import Clock, LoopClock
from harness.runtime.agent import AgentResult, AgentRunner, AgentSpec, Approvals
from harness.runtime.compaction import CompactionSettings, Compactor
from harness.runtime.config import ApiConfig, RuntimeConfig
from harness.runtime.events import RuntimeEvents
from harness.runtime.host import ConnectionKnobs, MCPHostManager, ServerSpec
from harness.runtime.persistence import ThreadStore
from harness.runtime.scope import ScopePolicy
from harness.telemetry.redact import Redactor

__all__ = ["RunResult", "Runtime", "client_options"]

# The runtime makes the one `chat {model}` span per request itself (GenAI semconv name) and
# propagates its trace context; the SDK's own call span would count every request twice.
_OWN_LLM_SPANS: Any = {"traces": False, "propagation": False}


def client_options(api: ApiConfig) -> dict[str, Any]:
    """The ``AsyncAnthropic`` options the runtime's client needs: no SDK retries (the
    AgentRunner retries API requests itself with seeded jitter on the run's clock; the
    configured budget goes to it), the configured request timeout, and no SDK spans."""
    return {"max_retries": 0, "timeout": api.timeout, "open_telemetry": _OWN_LLM_SPANS}


@dataclass(slots=True)
class RunResult:
    main: AgentResult | None
    tasks: dict[str, AgentResult] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "main": self.main.to_dict() if self.main else None,
            "tasks": {name: r.to_dict() for name, r in self.tasks.items()},
        }


class Runtime:
    """The runtime under test. Use as ``async with Runtime(config, client=..., servers=...) as
    rt: await rt.run()``."""

    def __init__(
        self,
        config: RuntimeConfig,
        *,
        client: anthropic.AsyncAnthropic,
        servers: Sequence[ServerSpec] = (),
        clock: Clock | None = None,
        rng: ChaosRandom | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        time_scale: float = 1.0,
        secrets: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        """``client`` is used as given (build it with ``client_options(config.api)``) and
        stays open: whoever made it closes it. ``servers`` are the MCP servers the agents
        reach. ``time_scale`` is the real length of one scenario second (live mode); the
        ``clock`` must agree with it (``ScaledClock(time_scale)``). ``secrets`` returns the
        values the runtime's spans and events must never carry (read when redacting)."""
        self.config = config
        self.time_scale = time_scale
        self._clock = clock or LoopClock()
        self._rng = rng or ChaosRandom(0)
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.events = RuntimeEvents(self._clock)
        policies = config.policies
        self.threads = ThreadStore(
            events=self.events,
            stored_results=policies.stored_results,
            window=policies.history_window,
            window_cut=policies.window_cut,
            resume_repair=policies.resume_repair,
            compaction_lock=policies.compaction_lock,
            thread_compaction=policies.thread_compaction,
            keep_entries=config.compaction.keep_last,
        )
        self._client = client
        self._specs = list(servers)
        self._secrets = secrets
        self._host: MCPHostManager | None = None
        self._runner: AgentRunner | None = None

    def _scoped_servers(self) -> frozenset[str]:
        return frozenset(
            name for name, s in self.config.servers.items() if s.scoped or s.fake == "chat"
        )

    async def __aenter__(self) -> Runtime:
        config = self.config
        self._host = MCPHostManager(
            self._specs,
            policy=config.policies.reconnect,
            knobs=ConnectionKnobs.from_policies(config.policies),
            clock=self._clock,
            events=self.events,
            tracer_provider=self._tracer_provider,
            meter_provider=self._meter_provider,
            time_scale=self.time_scale,
        )
        await self._host.__aenter__()
        try:
            self._runner = self._agent_runner(self._host)
        except BaseException as exc:
            await self._host.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _agent_runner(self, host: MCPHostManager) -> AgentRunner:
        config = self.config
        policies = config.policies
        compactor = Compactor(
            CompactionSettings(
                trigger=policies.compaction_trigger,
                cut=policies.compaction_cut,
                errors=policies.compaction_errors,
                threshold_tokens=config.compaction.threshold_tokens,
                keep_last=config.compaction.keep_last,
            ),
            events=self.events,
            tracer_provider=self._tracer_provider,
            meter_provider=self._meter_provider,
        )
        return AgentRunner(
            client=self._client,
            host=host,
            compactor=compactor,
            scope=ScopePolicy(
                config.policies.default_query_scope, scoped_servers=self._scoped_servers()
            ),
            subagent_context=config.policies.subagent_context,
            background_subagents=config.policies.background_subagents,
            clock=self._clock,
            rng=self._rng,
            events=self.events,
            model=config.model,
            max_tokens=config.max_tokens,
            max_retries=config.api.max_retries,
            strict_conversation=policies.history_checks == "strict",
            capture_content=config.capture_content,
            redact=Redactor(self._secrets),
            compactor_agent=config.compaction.agent,
            context_measure=policies.context_measure,
            thinking_budget=config.thinking.budget_tokens if config.thinking else None,
            thinking_blocks=policies.thinking_blocks,
            store=self.threads,
            tool_budget=policies.tool_budget,
            tool_budget_end=policies.tool_budget_end,
            approvals=_approvals(config),
            tracer_provider=self._tracer_provider,
            meter_provider=self._meter_provider,
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._host is not None:
            # Closing the connections is shielded inside; the task group must be exited
            # from this task's own scope, so no extra scope around it.
            await self._host.__aexit__(exc_type, exc, tb)

    @property
    def host(self) -> MCPHostManager:
        assert self._host is not None, "Runtime used outside 'async with'"
        return self._host

    # -- running ---------------------------------------------------------------------------
    def agent_spec(self, agent: str, **overrides: Any) -> AgentSpec:
        cfg = self.config.agents[agent]
        values: dict[str, Any] = {
            "name": agent,
            "system": cfg.system,
            "context_id": cfg.context_id,
            "max_turns": cfg.max_turns,
            "thread": cfg.thread,
            **overrides,
        }
        return AgentSpec(**values)

    @property
    def runner(self) -> AgentRunner:
        assert self._runner is not None, "Runtime used outside 'async with'"
        return self._runner

    async def run_agent(self, spec: AgentSpec, prompt: str) -> AgentResult:
        assert self._runner is not None, "Runtime used outside 'async with'"
        return await self._runner.run(spec, prompt)

    async def run(
        self,
        prompt: str | None = None,
        *,
        faults: Callable[[anyio.abc.TaskGroup], Awaitable[None]] | None = None,
    ) -> RunResult:
        """Run the main agent (if there is a prompt) and every scheduled task, concurrently.
        ``faults`` starts the run's planned faults in the task group given (the rig's); the
        group and the config's interrupts end with the run: later ones never fire."""
        prompt = prompt if prompt is not None else self.config.prompt
        result = RunResult(main=None)
        # The runs in progress, which an interrupt ends.
        running: set[anyio.CancelScope] = set()

        async def interruptible(spec: AgentSpec, prompt: str) -> AgentResult:
            with anyio.CancelScope() as scope:
                running.add(scope)
                try:
                    return await self.run_agent(spec, prompt)
                finally:
                    running.discard(scope)
            ended = [
                e.data.get("agent_id")
                for e in self.events.of_kind("agent_finished")
                if e.data.get("agent") == spec.name and e.data.get("stop") == "interrupted"
            ]
            agent_id = str(ended[-1]) if ended else ""
            return AgentResult(spec.name, agent_id, "interrupted", error="interrupted from outside")

        async def interrupt(at: float) -> None:
            await self._clock.sleep(at - self._clock.now())
            self.events.record("interrupted", runs=len(running))
            for scope in list(running):
                scope.cancel()

        async def main() -> None:
            assert prompt is not None
            result.main = await interruptible(self.agent_spec(self.config.main_agent), prompt)

        async def scheduled(index: int) -> None:
            task = self.config.scheduled[index]
            await self._clock.sleep(task.at - self._clock.now())
            self.events.record("task_fired", task=task.name, context_id=task.context_id)
            spec = self.agent_spec(
                task.agent, context_id=task.context_id, scope=task.scope, automated=True
            )
            if task.thread is not None:
                spec = dataclasses.replace(spec, thread=task.thread)
            result.tasks[task.name] = await interruptible(spec, task.prompt)

        async with anyio.create_task_group() as background:
            if faults is not None:
                await faults(background)
            async with anyio.create_task_group() as tg:
                if prompt is not None:
                    tg.start_soon(main)
                for index in range(len(self.config.scheduled)):
                    tg.start_soon(scheduled, index)
                for stop in self.config.interrupts:
                    background.start_soon(interrupt, stop.at)
            # Faults and interrupts planned for later than the run's end never fire.
            background.cancel_scope.cancel()
        self.threads.record_final()
        return result


def _approvals(config: RuntimeConfig) -> Approvals | None:
    given = config.approvals
    if given is None:
        return None
    return Approvals(
        tools=frozenset(given.tools),
        after=given.after,
        decision=given.decision,
        resume=config.policies.approval_resume,
    )
