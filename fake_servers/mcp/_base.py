"""``FakeServer``: one scripted fake MCP server (an ``MCPServer`` plus its script, clock,
event log and crash behaviour), and ``build_server`` to make one by name."""

from __future__ import annotations

import contextlib
import contextvars
import copy
import importlib
import inspect
import os
import signal
import sys
import time as _time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult
from opentelemetry.trace import TracerProvider

from fake_servers.mcp._behaviour import BehaviourMiddleware, connection_closed
from fake_servers.mcp._declared import DeclaredTools
from fake_servers.mcp._events import Event, EventKind, EventLog
from fake_servers.mcp._legacy import legacy_read_stream
from fake_servers.mcp._names import SERVER_NAMES
from fake_servers.mcp._script import Crash, ServerScript
from fake_servers.mcp._spans import use_tracer_provider
from harness.chaos_random import ChaosRandom
from harness.clock import Clock, LoopClock
from harness.errors import ConfigError
from harness.logging_guard import keep_root_logging

__all__ = ["SERVER_NAMES", "FakeServer", "ServerEnv", "build_server", "write_process_stderr"]


CrashMode = Literal["connections", "process"]

# The connection being served: set by ``_run_connection``, read by the lifespan it enters, whose
# state every request of that connection carries (handlers run in the client's context).
_CONNECTION: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "fake_mcp_connection", default=None
)
ToolFunction = Callable[..., Awaitable[CallToolResult]]


class ServerEnv:
    """What a server module gets to build its tools: the clock, the seeded randomness, the
    chat fixture path, and ``tool`` to register a tool."""

    def __init__(
        self, server: MCPServer, *, clock: Clock, rng: ChaosRandom, chat_fixture: Path | None
    ) -> None:
        self.server = server
        self.clock = clock
        self.rng = rng
        self.chat_fixture = chat_fixture
        self.tool_names: set[str] = set()

    def tool(self, fn: ToolFunction) -> ToolFunction:
        """Register ``fn`` as a tool. Tools return ``CallToolResult`` and declare no output
        schema, so a scripted result never fails the client's output validation."""
        # getdoc: the same description on every Python (3.13 dedents docstrings when compiling).
        description = inspect.getdoc(fn)
        # A module defines its tools as closures: the same code, signature and description
        # every time a server is built (every run). MCPServer derives a tool's argument model
        # and JSON schema from the signature, ~1 ms a tool: done once, then the registration
        # is copied with this closure in it.
        key = (fn.__code__, description, repr(fn.__defaults__), repr(fn.__annotations__))
        tools = self.server._tool_manager._tools
        built = _TOOLS.get(key)
        if built is not None and fn.__name__ not in tools:
            update = {"fn": fn, "parameters": copy.deepcopy(built.parameters)}
            tools[fn.__name__] = built.model_copy(update=update)
        else:
            self.server.tool(description=description, structured_output=False)(fn)
            if built is None and tools[fn.__name__].fn is fn:
                # Kept without the closure, which holds this run's server.
                _TOOLS[key] = tools[fn.__name__].model_copy(update={"fn": None})
        self.tool_names.add(fn.__name__)
        return fn


_TOOLS: dict[tuple[object, ...], Tool] = {}


class _ServerModule(Protocol):
    def register(self, env: ServerEnv) -> None: ...


class FakeServer:
    """A scripted fake MCP server.

    ``server`` is the ``MCPServer`` (``Client(fake.server, mode="legacy")`` in memory);
    ``events`` its event log. A crash ends the process when the server runs as a subprocess
    (``crash_mode="process"``); in memory there is no process of its own, so a crash closes
    the server side of every open connection: the client sees ``MCPError`` -32000
    "Connection closed" on every in-flight call, as with a dead subprocess. Under direct
    dispatch (``Client(server)`` in "auto" mode) in-flight and later calls raise that error
    until a client connects anew. Served over HTTP in process, a crash aborts the sockets.
    """

    def __init__(
        self,
        name: str,
        *,
        script: ServerScript,
        clock: Clock,
        events: EventLog,
        stderr: Callable[[bytes], object] | None,
    ) -> None:
        self.name = name
        self.script = script
        self.clock = clock
        self.events = events
        with keep_root_logging():
            self.server = MCPServer(
                f"fake-{name}", version="1.0.0", log_level="WARNING", lifespan=self._lifespan
            )
        self.crash_mode: CrashMode = "connections"
        self.transport = "memory"
        # Set by in-process HTTP serving: how to drop the sockets when crashing.
        self.on_crash: Callable[[], None] | None = None
        # Set by the process entry point: flush telemetry before a scripted self-kill.
        self.before_exit: Callable[[], object] | None = None
        self._stderr = stderr
        self._connections: set[anyio.CancelScope] = set()
        self._connection_count = 0
        self._in_flight: set[anyio.CancelScope] = set()
        # A direct-dispatch client (``Client(server)`` in "auto" mode) has no connection to
        # close: after a crash its calls fail until a client connects anew (a respawn).
        self.crashed = False
        # Why the server is stopping (a signal), added to the calls it cuts off.
        self.stop_detail: dict[str, Any] = {}
        # The script's declared tools (set by ``build_server``); answered by the middleware.
        self.declared = DeclaredTools(self, {})
        self.behaviour = BehaviourMiddleware(self)
        self.server.middleware.append(self.behaviour)
        lowlevel = self.server._lowlevel_server
        self._serve_connection = lowlevel.run
        lowlevel.run = self._run_connection  # type: ignore[method-assign]

    def log(self, kind: EventKind, *, time: float, **fields: Any) -> Event:
        """Append an event of this server to its log (with its connection, and its pid when
        it runs as a process of its own)."""
        fields.setdefault("connection", _CONNECTION.get())
        if self.crash_mode == "process":
            fields.setdefault("process", os.getpid())
            fields.setdefault("wall", round(_time.time(), 6))
        return self.events.append(kind, time=time, server=self.name, **fields)

    def forget_sessions(self) -> int:
        """Streamable HTTP: drop every session from the session table, as a restarted server
        would have none (their streams stay open; a request naming one gets 404). Returns how
        many there were (0 on other transports)."""
        if self.transport != "http":
            return 0
        # The SDK keeps the table in its session manager; the fake forgets it on purpose.
        table: dict[str, Any] = self.server.session_manager._server_instances
        count = len(table)
        table.clear()
        return count

    def log_abandoned(self, **detail: Any) -> None:
        """Record every request still being handled as ``cancelled`` (the server is being
        stopped under it, e.g. by a signal)."""
        now = self.clock.now()
        in_flight = self.behaviour.in_flight
        for key, fields in list(in_flight.items()):
            del in_flight[key]  # recorded once: the request's own end does not log it again
            self.log("cancelled", time=now, detail=detail, **fields)

    def flood_stderr(self, nbytes: int) -> None:
        """Write ``nbytes`` to stderr (a real, blocking write in a subprocess: a client that
        does not drain the pipe stalls the server) or to the in-memory sink."""
        line = b"fake-mcp: flooding stderr " + b"." * 53 + b"\n"
        data = (line * (nbytes // len(line) + 1))[:nbytes]
        if self._stderr is not None:
            self._stderr(data)

    async def crash(self, crash: Crash) -> None:
        """End the server as scripted; never returns normally."""
        if self.crash_mode == "process":
            if self.before_exit is not None:
                self.before_exit()
            if crash.how == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(crash.code)
        self.crashed = True
        if self.on_crash is not None:
            self.on_crash()
            await anyio.sleep_forever()
        if self._connections:
            for scope in list(self._connections):
                scope.cancel()
            await anyio.sleep_forever()
        for scope in list(self._in_flight):
            scope.cancel()
        raise connection_closed()

    async def crash_with(self, error: str) -> None:
        """Die of an unhandled exception: its text on stderr, then exit code 1 (as Python
        does); in memory, a crash like any other. Never returns normally."""
        if self._stderr is not None:
            self._stderr(f"Traceback (most recent call last):\n  ...\n{error}\n".encode())
        await self.crash(Crash(how="exit", code=1))

    @contextlib.contextmanager
    def track_call(self) -> Iterator[anyio.CancelScope]:
        """Scope of one in-flight request; a crash under direct dispatch cancels it."""
        with anyio.CancelScope() as scope:
            self._in_flight.add(scope)
            try:
                yield scope
            finally:
                self._in_flight.discard(scope)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: MCPServer) -> AsyncIterator[dict[str, Any]]:
        # Entered once per client connection, in every mode: a new connection is a respawn.
        self.crashed = False
        yield {"connection": _CONNECTION.get()}

    async def _run_connection(self, *args: Any, **kwargs: Any) -> None:
        # Every in-memory and stdio connection runs through here, so a crash can cancel it:
        # the serve loop then closes its write stream and the client reads EOF.
        self._connection_count += 1
        token = _CONNECTION.set(self._connection_count)
        with anyio.CancelScope() as scope:
            self._connections.add(scope)
            self.log("started", time=self.clock.now(), detail={"transport": self.transport})
            try:
                if self.script.sdk == "1.x":
                    read_stream, write_stream, *rest = args
                    async with legacy_read_stream(read_stream, write_stream) as legacy:
                        await self._serve_connection(legacy, write_stream, *rest, **kwargs)
                else:
                    await self._serve_connection(*args, **kwargs)
            finally:
                self._connections.discard(scope)
                self.log("stopped", time=self.clock.now(), detail={"transport": self.transport})
                _CONNECTION.reset(token)


def write_process_stderr(data: bytes) -> None:
    """The stderr sink of a server running as its own process: a real, blocking write."""
    sys.stderr.buffer.write(data)
    sys.stderr.buffer.flush()


def build_server(
    name: str,
    *,
    script: ServerScript | None = None,
    clock: Clock | None = None,
    rng: ChaosRandom | None = None,
    events: EventLog | None = None,
    chat_fixture: str | Path | None = None,
    tracer_provider: TracerProvider | None = None,
    stderr: Callable[[bytes], object] | None = None,
) -> FakeServer:
    """Build the fake server ``name`` (one of ``SERVER_NAMES``).

    ``script`` defaults to no scripting (built-in results only); ``clock`` to ``LoopClock``;
    ``rng`` to ``ChaosRandom(0)`` (vault values are drawn from it); ``events`` to a new log;
    ``tracer_provider`` to the global one. ``stderr`` receives the bytes of a scripted stderr
    flood in memory (default: discarded; subprocesses write to the real stderr).
    Raises ``ConfigError`` for an unknown name and ``ScriptError`` when the script names a
    tool the server lacks.
    """
    if name not in SERVER_NAMES:
        raise ConfigError(
            f"unknown fake MCP server '{name}' (choose from {', '.join(SERVER_NAMES)})",
            field="name",
        )
    script = script if script is not None else ServerScript()
    fake = FakeServer(
        name,
        script=script,
        clock=clock if clock is not None else LoopClock(),
        events=events if events is not None else EventLog(),
        stderr=stderr,
    )
    if tracer_provider is not None:
        use_tracer_provider(fake.server, tracer_provider)
    module: _ServerModule = importlib.import_module(f"fake_servers.mcp.{name}")
    env = ServerEnv(
        fake.server,
        clock=fake.clock,
        rng=rng if rng is not None else ChaosRandom(0),
        chat_fixture=Path(chat_fixture) if chat_fixture is not None else None,
    )
    module.register(env)
    script.check_server(name, env.tool_names)
    fake.declared = DeclaredTools(fake, script.declared_tools(name, env.tool_names))
    return fake
