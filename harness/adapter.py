"""The runtime-under-test protocol: how your own agent runtime stands where the harness's does.

A scenario that says ``runtime: {adapter: "my_pkg.harness_adapter:create"}`` runs *your*
runtime in the harness's process, in sim mode (on the virtual-time loop) and in live mode. You
write one async factory; the harness hands it the world a real deployment would get, and asks
it for answers::

    import anthropic
    from mcp import Client

    from harness.adapter import RuntimeContext, Task


    class MyRuntime:
        def __init__(self, ctx: RuntimeContext) -> None:
            self.api: anthropic.AsyncAnthropic = ctx.client  # points at the fake API
            self.model = ctx.model
            self.servers = ctx.servers  # {name: ServerParams}

        async def run(self, task: Task) -> str:
            async with Client(self.servers["ssh"].transport_target()) as ssh:
                tools = (await ssh.list_tools()).tools
                ...  # your agent loop: self.api.messages.create(...), ssh.call_tool(...)
                return "the final answer"

        async def aclose(self) -> None:
            pass  # close what the factory opened


    async def create(ctx: RuntimeContext) -> MyRuntime:
        return MyRuntime(ctx)

The harness calls ``runtime = await factory(ctx)`` once per run, ``await runtime.run(task)``
once per unit of work (the scenario's prompt for its main agent, and each scheduled task at its
time, concurrently), then ``await runtime.aclose()``, also when the run fails or is cut short.

- ``ctx.client`` is an ``anthropic.AsyncAnthropic`` for the fake Messages API (in sim through
  an in-process transport, in live over loopback); ``ctx.base_url``, ``ctx.api_key`` and
  ``ctx.http_client`` build another one the way your deployment does (e.g. a provider object).
  The fake routes a request to a scripted agent by ``[agent:NAME]`` in the system prompt.
- ``ctx.servers`` maps each MCP server to its ``ServerParams``: ``memory`` (sim: an in-process
  server behind the fault layer; ``connect()`` opens a connection), ``stdio`` (live: a command,
  behind ``harness interpose`` when the plan has faults for it) or ``http`` (a URL).
- ``ctx.clock`` is the run's clock (virtual in sim); ``ctx.seed`` the run's seed;
  ``ctx.options`` the scenario's ``runtime.options`` (merged with the policy's).

In sim mode everything your runtime does must be asyncio on the running loop: a worker thread
or a real socket would tie a virtual-time run to real time. Run such a runtime with
``--mode live``. Any agent *process* (any language) stands in with ``runtime: {command: [...]}``
in live mode instead; see ``harness.scenarios.user_runtime``.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from harness.errors import ConfigError

if TYPE_CHECKING:
    import anthropic
    import httpx2

    from harness.clock import Clock

__all__ = [
    "AgentRuntime",
    "RuntimeContext",
    "RuntimeFactory",
    "ServerParams",
    "Task",
    "load_factory",
]

Transport = Literal["memory", "stdio", "http"]

# A connection to an MCP server: an async context manager yielding the SDK's
# ``(read_stream, write_stream)`` pair of ``SessionMessage`` (what ``mcp.Client`` and
# ``mcp.ClientSession`` take).
Connect = Callable[[], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True, slots=True)
class ServerParams:
    """How to reach one MCP server, in the shape your client library takes.

    ``transport`` says which fields are set: ``memory`` has ``connect``; ``stdio`` has
    ``command``, ``args`` and ``env`` (the process environment to add to yours); ``http``
    has ``url``. ``connect()`` works for every transport (a fresh connection each call,
    like a respawn), so a runtime built on ``mcp`` streams needs no case analysis.
    """

    name: str
    transport: Transport
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    _connect: Connect | None = field(default=None, repr=False, compare=False)

    def connect(self) -> AbstractAsyncContextManager[Any]:
        """A new connection: an async context manager yielding ``(read, write)`` streams."""
        if self._connect is not None:
            return self._connect()
        if self.transport == "stdio":
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            assert self.command is not None
            # The SDK adds its safe default environment (PATH, HOME, ...) to ``env``.
            params = StdioServerParameters(
                command=self.command, args=list(self.args), env=dict(self.env) or None
            )
            return stdio_client(params)
        from mcp.client.streamable_http import streamable_http_client

        assert self.url is not None
        return streamable_http_client(self.url)

    def transport_target(self) -> Any:
        """What ``mcp.Client(...)`` takes for this server: a transport over ``connect()``
        (memory, stdio) or the URL (http)."""
        if self.transport == "http":
            return self.url
        return _ConnectTransport(self.connect)

    def to_mcp_config(self) -> dict[str, Any]:
        """This server as one entry of an ``mcpServers`` file (stdio or http only)."""
        if self.transport == "stdio":
            return {"command": self.command, "args": list(self.args), "env": dict(self.env)}
        if self.transport == "http":
            return {"type": "http", "url": self.url}
        raise ConfigError(
            "an in-memory server has no mcpServers entry (it lives in the harness's process)",
            field=f"servers.{self.name}",
        )


class _ConnectTransport:
    """An ``mcp`` client ``Transport`` (an async context manager) over ``connect()``."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._cm: AbstractAsyncContextManager[Any] | None = None

    async def __aenter__(self) -> Any:
        self._cm = self._connect()
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc: object) -> bool | None:
        assert self._cm is not None
        return await self._cm.__aexit__(*exc)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RuntimeContext:
    """The world the harness hands your runtime's factory."""

    client: anthropic.AsyncAnthropic
    base_url: str
    api_key: str
    http_client: httpx2.AsyncClient | None
    servers: Mapping[str, ServerParams]
    model: str
    seed: int
    clock: Clock
    mode: Literal["sim", "live"] = "sim"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Task:
    """One unit of work: an agent's prompt, where it runs and the scope it declared.

    ``name`` is ``"main"`` for the scenario's prompt, else the scheduled task's name;
    ``scheduled`` tasks start at ``at`` scenario seconds with their ``context_id`` (the chat
    tab they run in) and ``scope`` (the context they declared they read, e.g. ``"all"``)."""

    name: str
    agent: str
    prompt: str
    context_id: str | None = None
    scope: str | None = None
    scheduled: bool = False
    at: float = 0.0


@runtime_checkable
class AgentRuntime(Protocol):
    """What a factory returns."""

    async def run(self, task: Task) -> str:
        """Do ``task``; return the final answer."""
        ...

    async def aclose(self) -> None:
        """Close everything the runtime opened (connections, processes, clients)."""
        ...


RuntimeFactory = Callable[[RuntimeContext], Awaitable[AgentRuntime]]


def load_factory(spec: str, *, field_name: str = "runtime.adapter") -> RuntimeFactory:
    """The factory named by ``"package.module:attribute"``, imported from the current
    directory or the installed packages; a ``ConfigError`` naming what is wrong (the syntax, a
    module that does not import, a missing or non-callable attribute)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(
            "name the factory as package.module:attribute", field=field_name, value=spec
        )
    import os
    import sys

    if os.getcwd() not in sys.path:
        # As ``python -m`` and uvicorn do: a project's own package imports from where the
        # harness runs (the console script's sys.path starts at its bin directory).
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a user module may raise anything at import
        hint = ""
        if isinstance(exc, ModuleNotFoundError):
            hint = (
                f" (adapters import from the current directory, {os.getcwd()}, and the "
                "installed packages: run from your project's root or install it)"
            )
        raise ConfigError(
            f"could not import {module_name}: {type(exc).__name__}: {exc}{hint}",
            field=field_name,
            value=spec,
        ) from None
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigError(
                f"module {module_name} has no attribute {attribute}", field=field_name, value=spec
            )
    if not callable(target):
        raise ConfigError(f"{spec} is not callable", field=field_name, value=spec)
    return target  # type: ignore[no-any-return]
