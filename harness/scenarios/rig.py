"""The rig: the world a runtime under test runs in, built in one place for every runtime.

What a deployment would hand a runtime, built here and observed from outside: the fake Messages
API (its journal), the fake MCP servers (their event records), the fault plan wired in front of
each server and into the API (``harness.scenarios.fault_wiring``), the vaults' secrets and the
span files of server processes. The reference runtime (``harness.runtime``) gets an API client
and ``ServerSpec``\\ s from it (``reference_runtime``); a runtime the scenario names gets a
``RuntimeContext`` with ``ServerParams`` (``server_params``, ``harness.scenarios.user_runtime``).

How each server is reached follows the config the rig is given (sim mode makes every fake
server in memory, live mode a stdio subprocess unless the scenario asked for HTTP):

- in memory: the fake ``MCPServer`` in this process, each connection behind the in-process
  fault layer;
- stdio: the fake server (or the config's command) as a subprocess, behind ``harness
  interpose`` when the plan has faults for it; its events and spans go to files in the run's
  work directory, read back when the run ends;
- HTTP: a fake served on loopback, or the config's URL; behind the TCP proxy when asked
  (the toxics act on its sockets), frame faults on the client transport.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anthropic
import anyio
from opentelemetry import metrics, trace

from harness._run_clock import on_run_clock
from harness.adapter import ServerParams
from harness.chaos_random import ChaosRandom
from harness.clock import Clock, LoopClock, ScaledClock
from harness.errors import ConfigError
from harness.runtime.config import ApiConfig, RuntimeConfig, ServerConfig
from harness.runtime.host import ServerSpec
from harness.runtime.runtime import RunResult, Runtime, client_options
from harness.scenarios.agent_process import TAG
from harness.scenarios.fault_wiring import RuntimeFaults

if TYPE_CHECKING:
    from fake_servers.anthropic import FakeAnthropic
    from fake_servers.mcp import FakeServer

__all__ = ["FAKE_API_KEY", "Rig", "reference_runtime", "server_params"]

# The fake accepts any key; a fixed one keeps real keys out of every run.
FAKE_API_KEY = "sk-ant-harness-fake"


@dataclass(eq=False)
class Rig:
    """What the rig built for one run, and what it observed. Use as ``async with``: what it
    starts (servers, proxies, the served API, the work directory) closes on the way out."""

    clock: Clock
    rng: ChaosRandom
    faults: RuntimeFaults
    fake_api: FakeAnthropic | None
    tracer_provider: trace.TracerProvider | None = None
    # Where server processes keep scripts, event logs and spans (default: a temporary
    # directory, made when first needed and removed on exit).
    workdir: Path | None = None
    fakes: dict[str, FakeServer] = field(default_factory=dict)
    events_files: dict[str, Path] = field(default_factory=dict)
    spans_files: dict[str, Path] = field(default_factory=dict)
    vault_rngs: list[ChaosRandom] = field(default_factory=list)
    # A real API key read from the environment: a secret like the vaults'.
    api_keys: list[str] = field(default_factory=list)
    # Unix time of the run clock's zero (live): server processes' events are put on it.
    origin: float | None = None
    # The reference runtime, once ``reference_runtime`` has built it.
    runtime: Runtime | None = None
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    @classmethod
    def build(
        cls,
        config: RuntimeConfig,
        *,
        clock: Clock,
        rng: ChaosRandom,
        tracer_provider: trace.TracerProvider | None = None,
        capture_journal: bool = False,
        workdir: Path | None = None,
    ) -> Rig:
        """The fake API (when the config names a model script) and the fault plan; servers
        come with ``server_specs`` once entered."""
        fake_api = None
        if config.api.fake_script is not None:
            from fake_servers.anthropic import FakeAnthropic, Journal, ModelScript

            script = config.api.fake_script
            fake_api = FakeAnthropic(
                ModelScript.model_validate(script)
                if isinstance(script, dict)
                else ModelScript.load(script),
                rng=rng.fork("fake-anthropic"),
                clock=clock,
                tracer_provider=tracer_provider,
                journal=Journal(capture_content=capture_journal),
            )
        faults = RuntimeFaults(
            config.faults,
            clock=clock,
            rng=rng.fork("faults"),
            time_scale=_scale(clock),
            tracer_provider=tracer_provider,
        )
        return cls(clock, rng, faults, fake_api, tracer_provider, workdir)

    @property
    def time_scale(self) -> float:
        """Real seconds per scenario second."""
        return _scale(self.clock)

    async def __aenter__(self) -> Rig:
        await self.stack.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Not under a shield: the stack holds servers with task groups of their own, whose
        # cancel scopes must be exited in order; each shields its own shutdown.
        await self.stack.__aexit__(exc_type, exc, tb)

    def work_directory(self) -> Path:
        """The run's work directory, made on first use."""
        if self.workdir is None:
            self.workdir = Path(
                self.stack.enter_context(tempfile.TemporaryDirectory(prefix="harness-"))
            )
        return self.workdir

    # -- servers -------------------------------------------------------------------------------
    async def server_specs(self, config: RuntimeConfig) -> list[ServerSpec]:
        """Every server of ``config``, started (fakes) and wired into the fault plan."""
        from mcp import StdioServerParameters

        specs: list[ServerSpec] = []
        for name, server in config.servers.items():
            timeout = server.timeout
            if server.fake is not None:
                specs.append(await self._fake_spec(name, server, timeout))
            elif server.command is not None:
                params = StdioServerParameters(
                    command=server.command[0], args=server.command[1:], env=server.env
                )
                params = self.faults.interposed(params, name, workdir=self.work_directory())
                specs.append(ServerSpec(name, command=params, timeout=timeout))
            else:
                assert server.url is not None
                specs.append(await self._url_spec(name, server.url, server, timeout))
        self.spans_files.update(self.faults.spans_files)
        # Per-tool timeouts ride on the spec, whatever built it.
        return [
            dataclasses.replace(spec, tool_timeouts=config.servers[spec.name].tool_timeouts)
            for spec in specs
        ]

    async def _url_spec(
        self, name: str, url: str, server: ServerConfig, timeout: float | None
    ) -> ServerSpec:
        # Behind the proxy the toxics act on its sockets; frame faults stay on the transport.
        if server.proxy:
            url = await self.faults.proxied(url, name, stack=self.stack)
        wrap = self.faults.wrap(name, skip_toxics=server.proxy)
        return ServerSpec(name, url=url, timeout=timeout, wrap=wrap)

    async def _fake_spec(
        self, name: str, server: ServerConfig, timeout: float | None
    ) -> ServerSpec:
        from pydantic import ValidationError

        from fake_servers.mcp import ServerScript, build_server, serve_http, stdio_parameters
        from fake_servers.mcp.chat import ChatFixture
        from harness._yaml import validation_error

        assert server.fake is not None
        script: ServerScript | None = None
        if isinstance(server.script, dict):
            script = ServerScript.model_validate(server.script)
        elif server.script is not None:
            script = ServerScript.load(server.script)
        chat_fixture: str | ChatFixture | None = None
        if isinstance(server.chat_fixture, dict):
            try:
                chat_fixture = ChatFixture.model_validate(server.chat_fixture)
            except ValidationError as exc:  # a runtime config's (a scenario's failed at load)
                where = ("servers", name, "chat_fixture")
                raise validation_error(
                    exc, text=None, path=None, error=ConfigError, prefix=where
                ) from None
        else:
            chat_fixture = server.chat_fixture
        rng = self.rng.fork(f"fake-mcp-{name}")
        if server.transport == "stdio":
            work = self.work_directory()
            # Inline script and fixture reach the process as files in the run's work directory.
            script_path: str | None = None
            if script is not None:
                script_file = work / f"{name}.script.json"
                script_file.write_text(json.dumps(script.model_dump(mode="json")))
                script_path = str(script_file)
            if isinstance(chat_fixture, ChatFixture):
                fixture_file = work / f"{name}.chat.json"
                fixture_file.write_text(json.dumps(chat_fixture.model_dump(mode="json")))
                chat_fixture = str(fixture_file)
            seed = rng.getrandbits(31)
            if server.fake == "vault":
                self.vault_rngs.append(ChaosRandom(seed))
            self.events_files[name] = work / f"{name}.events.jsonl"
            self.spans_files[name] = work / f"{name}.spans.jsonl"
            params = stdio_parameters(
                server.fake,
                script=script_path,
                events=self.events_files[name],
                spans=self.spans_files[name],
                seed=seed,
                chat_fixture=chat_fixture,
                extra_args=["--time-scale", repr(self.time_scale)],
            )
            params = self.faults.interposed(params, name, workdir=work)
            return ServerSpec(name, command=params, timeout=timeout)
        if server.fake == "vault":
            self.vault_rngs.append(rng)
        fake = build_server(
            server.fake,
            script=script,
            clock=self.clock,
            rng=rng,
            chat_fixture=chat_fixture,
            tracer_provider=self.tracer_provider,
        )
        self.fakes[name] = fake
        if server.transport == "http":
            url = await self.stack.enter_async_context(serve_http(fake))
            return await self._url_spec(name, url, server, timeout)
        return ServerSpec(name, instance=fake.server, timeout=timeout, wrap=self.faults.wrap(name))

    # -- the model API -------------------------------------------------------------------------
    async def reference_client(self, api: ApiConfig) -> anthropic.AsyncAnthropic:
        """The reference runtime's API client: the fake in process, the fake served on
        loopback, or the configured base URL with the key from the environment. Closed with
        the rig."""
        options = client_options(api)
        if self.fake_api is not None and not api.loopback:
            client = self.fake_api.async_client(**options)
        elif self.fake_api is not None:
            base_url = await self.stack.enter_async_context(self.fake_api.serve())
            client = anthropic.AsyncAnthropic(api_key=FAKE_API_KEY, base_url=base_url, **options)
        else:
            key = os.environ.get(api.api_key_env)
            if not key:
                raise ConfigError(
                    f"the API key variable {api.api_key_env} is not set",
                    field="api.api_key_env",
                )
            self.api_keys.append(key)
            client = anthropic.AsyncAnthropic(api_key=key, base_url=api.base_url, **options)

        async def close() -> None:
            with anyio.CancelScope(shield=True):
                await client.close()

        self.stack.push_async_callback(close)
        return client

    @asynccontextmanager
    async def llm_faults(self) -> AsyncIterator[None]:
        """The plan's ``llm`` faults injected into the fake API while the body runs; those
        planned past its end never fire."""
        async with anyio.create_task_group() as faults:
            if self.fake_api is not None:
                await self.faults.inject_llm(self.fake_api, faults)
            yield
            faults.cancel_scope.cancel()

    async def run(self, prompt: str | None = None) -> RunResult:
        """The reference runtime's run (``Runtime.run``) with the plan's model-API faults and
        client-side cancels (those planned past its end never fire)."""

        async def start(group: anyio.abc.TaskGroup) -> None:
            if self.fake_api is not None:
                await self.faults.inject_llm(self.fake_api, group)
            await self.faults.inject_cancels(self.rt.host.calls, group)

        return await self.rt.run(prompt, faults=start)

    @property
    def rt(self) -> Runtime:
        assert self.runtime is not None, "the rig has no reference runtime"
        return self.runtime

    # -- what it observed ----------------------------------------------------------------------
    def server_events(self) -> dict[str, list[dict[str, Any]]]:
        """Each fake server's own event log (in memory, or read back from a subprocess's
        file, on the run's clock when it has an origin)."""
        out = {name: [e.to_json() for e in fake.events.events] for name, fake in self.fakes.items()}
        for name, path in self.events_files.items():
            rows = []
            if path.exists():
                for line in path.read_text(encoding="utf-8").splitlines():
                    try:
                        rows.append(self._on_run_clock(json.loads(line)))
                    except ValueError:
                        continue  # a line cut short by a killed process
            out[name] = rows
        return out

    def _on_run_clock(self, event: dict[str, Any]) -> dict[str, Any]:
        """A server process's event with ``time`` on the run's clock (its own kept as
        ``process_time``), so records of every process merge in one order."""
        return on_run_clock(event, origin=self.origin, scale=self.time_scale)

    def fault_events(self) -> list[dict[str, Any]]:
        """Every fault record, the interposers' put on the run's clock (live)."""
        return self.faults.events(origin=self.origin)

    def journal(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.fake_api.journal.records] if self.fake_api else []

    def secrets(self) -> list[str]:
        """Every value the fake vaults can hand out, and a real API key read for the run."""
        from fake_servers.mcp.vault import SECRET_NAMES, secret_value

        vaults = [secret_value(rng, s) for rng in self.vault_rngs for s in SECRET_NAMES]
        return [*vaults, *self.api_keys]


def _scale(clock: Clock) -> float:
    return clock.scale if isinstance(clock, ScaledClock) else 1.0


def server_params(spec: ServerSpec, *, tag: str | None = None) -> ServerParams:
    """A server the rig built as a runtime under test takes it (``harness.adapter``): an
    in-memory one connects behind its fault layer; a process gets ``tag`` in its environment
    (so one it outlives is found)."""
    if spec.instance is not None:

        def connect(instance: Any = spec.instance, wrap: Any = spec.wrap) -> Any:
            from mcp.client._memory import InMemoryTransport

            transport = InMemoryTransport(instance)
            return wrap(transport) if wrap is not None else transport

        return ServerParams(spec.name, "memory", _connect=connect)
    if spec.command is not None:
        env = {**(spec.command.env or {}), **({TAG: tag} if tag else {})}
        return ServerParams(
            spec.name, "stdio", command=spec.command.command, args=tuple(spec.command.args), env=env
        )
    return ServerParams(spec.name, "http", url=spec.url)


@asynccontextmanager
async def reference_runtime(
    config: RuntimeConfig,
    *,
    clock: Clock | None = None,
    rng: ChaosRandom | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    workdir: Path | None = None,
) -> AsyncIterator[Rig]:
    """The reference runtime in its rig: ``async with reference_runtime(config) as rig:
    await rig.run()`` (``rig.rt`` is the ``Runtime``). The clock's scale is the run's time
    scale; everything built is closed on the way out, faults and cancellation included."""
    clock = clock or LoopClock()
    rng = rng or ChaosRandom(0)
    rig = Rig.build(
        config,
        clock=clock,
        rng=rng,
        tracer_provider=tracer_provider,
        # Message texts in the journal when asked (oracles that read texts need them).
        capture_journal=config.capture_content,
        workdir=workdir,
    )
    async with rig:
        specs = await rig.server_specs(config)
        client = await rig.reference_client(config.api)
        async with Runtime(
            config,
            client=client,
            servers=specs,
            clock=clock,
            rng=rng,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            time_scale=rig.time_scale,
            secrets=rig.secrets,
        ) as rt:
            rig.runtime = rt
            yield rig
