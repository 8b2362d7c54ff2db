"""``Runtime``: assembles the runtime under test from a ``RuntimeConfig`` and runs it.

It owns the API client, the shared ``MCPHostManager``, the compactor and the scope policy, runs
the main agent and the scheduled tasks concurrently on the injected clock, and closes every
connection (and subprocess) on the way out, faults and cancellation included.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anthropic
import anyio
from opentelemetry import metrics, trace

from harness.chaos_random import ChaosRandom
from harness.clock import Clock, LoopClock
from harness.errors import ConfigError
from harness.runtime.agent import AgentResult, AgentRunner, AgentSpec
from harness.runtime.compaction import CompactionSettings, Compactor
from harness.runtime.config import RuntimeConfig
from harness.runtime.events import RuntimeEvents
from harness.runtime.faults import RuntimeFaults
from harness.runtime.host import MCPHostManager, ServerSpec
from harness.runtime.persistence import ThreadStore
from harness.runtime.scope import ScopePolicy
from harness.telemetry.redact import Redactor

if TYPE_CHECKING:
    from fake_servers.anthropic import FakeAnthropic
    from fake_servers.mcp import FakeServer

__all__ = ["RunResult", "Runtime"]

# The runtime makes the one `chat {model}` span per request itself (GenAI semconv name) and
# propagates its trace context; the SDK's own call span would count every request twice.
_OWN_LLM_SPANS: Any = {"traces": False, "propagation": False}
# Clients are built with max_retries=0 (see _build_client): the AgentRunner retries API requests
# itself with seeded jitter on the run's clock; the configured budget goes to it.


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
    """The runtime under test. Use as ``async with Runtime(config) as rt: await rt.run()``."""

    def __init__(
        self,
        config: RuntimeConfig,
        *,
        client: anthropic.AsyncAnthropic | None = None,
        server_specs: list[ServerSpec] | None = None,
        clock: Clock | None = None,
        rng: ChaosRandom | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        time_scale: float = 1.0,
        workdir: Path | None = None,
    ) -> None:
        """``time_scale`` is the real length of one scenario second (live mode); the injected
        ``clock`` must agree with it (``ScaledClock(time_scale)``). Subprocess servers keep
        their scripts, event logs and spans in ``workdir`` (default: a temporary directory
        removed on exit)."""
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
        self.fake_api: FakeAnthropic | None = None
        self.fake_servers: dict[str, FakeServer] = {}
        self._server_rngs: dict[str, ChaosRandom] = {}
        self._server_seeds: dict[str, int] = {}
        self._events_files: dict[str, Path] = {}
        self.spans_files: dict[str, Path] = {}
        self._stack = AsyncExitStack()
        self._workdir: Path | None = workdir
        self._client = client
        self._owns_client = client is None
        self._extra_specs = server_specs or []
        self._host: MCPHostManager | None = None
        self._runner: AgentRunner | None = None
        self.faults = RuntimeFaults(
            config.faults,
            clock=self._clock,
            rng=self._rng.fork("faults"),
            time_scale=time_scale,
            tracer_provider=tracer_provider,
        )

    # -- assembly --------------------------------------------------------------------------
    async def _build_client(self) -> anthropic.AsyncAnthropic:
        api = self.config.api
        if api.fake_script is not None:
            from fake_servers.anthropic import FakeAnthropic, ModelScript

            script = (
                ModelScript.model_validate(api.fake_script)
                if isinstance(api.fake_script, dict)
                else ModelScript.load(api.fake_script)
            )
            self.fake_api = FakeAnthropic(
                script,
                rng=self._rng.fork("fake-anthropic"),
                clock=self._clock,
                tracer_provider=self._tracer_provider,
            )
            if not api.loopback:
                return self.fake_api.async_client(
                    max_retries=0, timeout=api.timeout, open_telemetry=_OWN_LLM_SPANS
                )
            base_url = await self._stack.enter_async_context(self.fake_api.serve())
            # The fake accepts any key; a fixed one keeps real keys out of this path.
            return anthropic.AsyncAnthropic(
                api_key="sk-harness-fake",
                base_url=base_url,
                max_retries=0,
                timeout=api.timeout,
                open_telemetry=_OWN_LLM_SPANS,
            )
        key = os.environ.get(api.api_key_env)
        if not key:
            raise ConfigError(
                f"the API key variable {api.api_key_env} is not set",
                field="api.api_key_env",
            )
        return anthropic.AsyncAnthropic(
            api_key=key,
            base_url=api.base_url,
            max_retries=0,
            timeout=api.timeout,
            open_telemetry=_OWN_LLM_SPANS,
        )

    def _workdir_path(self) -> Path:
        if self._workdir is None:
            self._workdir = Path(
                self._stack.enter_context(tempfile.TemporaryDirectory(prefix="harness-"))
            )
        return self._workdir

    async def _build_specs(self) -> list[ServerSpec]:
        from mcp import StdioServerParameters

        specs: list[ServerSpec] = []
        for name, server in self.config.servers.items():
            timeout = server.timeout
            if server.fake is not None:
                specs.append(await self._fake_spec(name, server, timeout))
            elif server.command is not None:
                params = StdioServerParameters(
                    command=server.command[0], args=server.command[1:], env=server.env
                )
                params = self.faults.interposed(params, name, workdir=self._workdir_path())
                specs.append(ServerSpec(name, command=params, timeout=timeout))
            else:
                assert server.url is not None
                specs.append(await self._url_spec(name, server.url, server, timeout))
        return [*specs, *self._extra_specs]

    async def _url_spec(self, name: str, url: str, server: Any, timeout: float) -> ServerSpec:
        # Behind the proxy the toxics act on its sockets; frame faults stay on the transport.
        if server.proxy:
            url = await self.faults.proxied(url, name, stack=self._stack)
        wrap = self.faults.wrap(name, skip_toxics=server.proxy)
        return ServerSpec(name, url=url, timeout=timeout, wrap=wrap)

    async def _fake_spec(self, name: str, server: Any, timeout: float) -> ServerSpec:
        from fake_servers.mcp import ServerScript, build_server, serve_http, stdio_parameters

        assert server.fake is not None
        script: ServerScript | None = None
        if isinstance(server.script, dict):
            script = ServerScript.model_validate(server.script)
        elif server.script is not None:
            script = ServerScript.load(server.script)
        rng = self._rng.fork(f"fake-mcp-{name}")
        self._server_rngs[name] = rng
        if server.transport == "stdio":
            work = self._workdir_path()
            script_path: str | None = None
            if script is not None:
                script_file = work / f"{name}.script.json"
                script_file.write_text(json.dumps(script.model_dump(mode="json")))
                script_path = str(script_file)
            self._server_seeds[name] = seed = rng.getrandbits(31)
            self._events_files[name] = work / f"{name}.events.jsonl"
            self.spans_files[name] = work / f"{name}.spans.jsonl"
            params = stdio_parameters(
                server.fake,
                script=script_path,
                events=self._events_files[name],
                spans=self.spans_files[name],
                seed=seed,
                chat_fixture=server.chat_fixture,
                extra_args=["--time-scale", repr(self.time_scale)],
            )
            params = self.faults.interposed(params, name, workdir=work)
            return ServerSpec(name, command=params, timeout=timeout)
        fake = build_server(
            server.fake,
            script=script,
            clock=self._clock,
            rng=rng,
            chat_fixture=server.chat_fixture,
            tracer_provider=self._tracer_provider,
        )
        self.fake_servers[name] = fake
        if server.transport == "http":
            url = await self._stack.enter_async_context(serve_http(fake))
            return await self._url_spec(name, url, server, timeout)
        return ServerSpec(name, instance=fake.server, timeout=timeout, wrap=self.faults.wrap(name))

    def server_events(self) -> dict[str, list[dict[str, Any]]]:
        """Each fake server's own event log (in memory, or read back from a subprocess's file)."""
        out: dict[str, list[dict[str, Any]]] = {
            name: [e.to_json() for e in fake.events.events]
            for name, fake in self.fake_servers.items()
        }
        for name, path in self._events_files.items():
            rows: list[dict[str, Any]] = []
            if path.exists():
                for line in path.read_text(encoding="utf-8").splitlines():
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        continue  # a line cut short by a killed process
            out[name] = rows
        return out

    def _scoped_servers(self) -> frozenset[str]:
        return frozenset(
            name for name, s in self.config.servers.items() if s.scoped or s.fake == "chat"
        )

    async def __aenter__(self) -> Runtime:
        config = self.config
        await self._stack.__aenter__()
        try:
            specs = await self._build_specs()
            self.spans_files.update(self.faults.spans_files)
            if self._client is None:
                self._client = await self._build_client()
        except BaseException:
            await self._stack.aclose()
            raise
        self._host = MCPHostManager(
            specs,
            policy=config.policies.reconnect,
            clock=self._clock,
            events=self.events,
            tracer_provider=self._tracer_provider,
            meter_provider=self._meter_provider,
            time_scale=self.time_scale,
        )
        await self._host.__aenter__()
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
        self._runner = AgentRunner(
            client=self._client,
            host=self._host,
            compactor=compactor,
            scope=ScopePolicy(config.policies.scope, scoped_servers=self._scoped_servers()),
            clock=self._clock,
            rng=self._rng,
            events=self.events,
            model=config.model,
            max_tokens=config.max_tokens,
            max_retries=config.api.max_retries,
            strict_conversation=policies.history_checks == "strict",
            capture_content=config.capture_content,
            redact=Redactor(self._known_secrets),
            compactor_agent=config.compaction.agent,
            context_measure=policies.context_measure,
            thinking_budget=config.thinking.budget_tokens if config.thinking else None,
            thinking_blocks=policies.thinking_blocks,
            store=self.threads,
            tool_budget=policies.tool_budget,
            tool_budget_end=policies.tool_budget_end,
            tracer_provider=self._tracer_provider,
            meter_provider=self._meter_provider,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._host is not None:
                # Closing the connections is shielded inside; the task group must be exited
                # from this task's own scope, so no extra scope around it.
                await self._host.__aexit__(exc_type, exc, tb)
        finally:
            with anyio.CancelScope(shield=True):
                if self._client is not None and self._owns_client:
                    await self._client.close()
            # Not under the shield: the stack holds servers with task groups of their own,
            # whose cancel scopes must be exited in order; each shields its own shutdown.
            await self._stack.aclose()

    def secret_values(self) -> list[str]:
        """Every value the in-memory fake vaults can hand out (for the telemetry oracle)."""
        from fake_servers.mcp.vault import SECRET_NAMES, secret_value

        values = [
            secret_value(self._server_rngs[name], secret)
            for name, fake in self.fake_servers.items()
            if fake.name == "vault"
            for secret in SECRET_NAMES
        ]
        for name, seed in self._server_seeds.items():
            if self.config.servers[name].fake == "vault":
                values += [secret_value(ChaosRandom(seed), s) for s in SECRET_NAMES]
        return values

    def _known_secrets(self) -> list[str]:
        # The fake vaults' values, and the API key when one is read from the environment.
        key = os.environ.get(self.config.api.api_key_env) if self.config.api.base_url else None
        return [*self.secret_values(), *([key] if key else [])]

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

    async def run(self, prompt: str | None = None) -> RunResult:
        """Run the main agent (if there is a prompt) and every scheduled task, concurrently."""
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

        async with anyio.create_task_group() as faults:
            if self.fake_api is not None:
                await self.faults.inject_llm(self.fake_api, faults)
            async with anyio.create_task_group() as tg:
                if prompt is not None:
                    tg.start_soon(main)
                for index in range(len(self.config.scheduled)):
                    tg.start_soon(scheduled, index)
                for stop in self.config.interrupts:
                    faults.start_soon(interrupt, stop.at)
            # Faults and interrupts planned for later than the run's end never fire.
            faults.cancel_scope.cancel()
        self.threads.record_final()
        return result
