"""``MCPHostManager``: one shared MCP connection per server, used by every agent.

This is the shared state of the *cascade* bug. Every tool call goes through ``call_tool``, which
counts in-flight calls per server, applies the call timeout (150 s by default) and, when a call
times out or its connection dies, applies the reconnect policy:

``naive`` (the original bug)
    The failing caller tears the connection down and reconnects at once, without looking at the
    other calls in flight on it. Those calls die with "Connection closed" and their callers do the
    same in their exception handlers, so reconnects race, connections are spawned twice and the
    losers are orphaned. Nothing is faked: whatever the ``mcp`` SDK does when its transport is
    closed under a live call is what the callers see.

``coordinated`` (the fix)
    A per-server lock, an in-flight count and a generation number. A failed call marks the
    connection broken; new calls wait instead of joining it; nobody tears down while other calls
    are live; the caller that brings the count to zero reconnects (once per generation) and every
    failed caller retries once on the restored connection.

Every decision is a ``harness.mcp.reconnect`` span with the in-flight count at the decision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol, cast

import anyio
from anyio.abc import TaskGroup
from mcp import MCPError, StdioServerParameters
from mcp.types import CallToolResult, RequestParamsMeta, TextContent, Tool
from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode

from harness.clock import Clock, LoopClock
from harness.errors import ConfigError, RuntimeFailure
from harness.runtime._connection import Connection
from harness.runtime.events import RuntimeEvents
from harness.telemetry import semconv as sc

__all__ = [
    "RECONNECT_POLICIES",
    "MCPHostManager",
    "ReconnectPolicyName",
    "ServerSpec",
    "ToolCallOutcome",
]

ReconnectPolicyName = Literal["naive", "coordinated"]

CONNECTION_CLOSED = -32000
REQUEST_TIMEOUT = -32001

DEFAULT_CALL_TIMEOUT = 150.0


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """How to reach one MCP server.

    Exactly one of ``command`` (stdio subprocess), ``url`` (streamable HTTP) or ``instance``
    (an in-process ``MCPServer``/``Server``, connected in legacy mode so JSON-RPC framing and SDK
    tracing stay real) is set. ``wrap`` lets the fault layer wrap the client transport.
    """

    name: str
    command: StdioServerParameters | None = None
    url: str | None = None
    instance: Any = None
    timeout: float = DEFAULT_CALL_TIMEOUT
    wrap: Callable[[Any], Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        given = [x for x in (self.command, self.url, self.instance) if x is not None]
        if len(given) != 1:
            raise ConfigError(
                "a server needs exactly one of command, url or instance",
                field=f"servers.{self.name}",
            )
        if not (self.timeout > 0 and math.isfinite(self.timeout)):
            raise ConfigError(
                "timeout must be a positive number of seconds",
                field=f"servers.{self.name}.timeout",
                value=self.timeout,
            )

    def transport(self) -> Any:
        """A fresh client transport (or in-process server) for one connection attempt."""
        if self.command is not None:
            from mcp.client.stdio import stdio_client

            base: Any = stdio_client(self.command)
        elif self.url is not None:
            from mcp.client.streamable_http import streamable_http_client

            base = streamable_http_client(self.url)
        elif self.wrap is not None:
            # Wrapping needs a Transport object; the SDK only builds one for in-process servers
            # inside Client, so build the same in-memory transport here.
            from mcp.client._memory import InMemoryTransport

            base = InMemoryTransport(self.instance)
        else:
            return self.instance
        return self.wrap(base) if self.wrap is not None else base


@dataclass(frozen=True, slots=True)
class ToolCallOutcome:
    """What a tool call produced, as the agent loop turns it into a ``tool_result``."""

    result: CallToolResult | None
    error: str | None = None
    error_type: str | None = None
    retried: bool = False

    @property
    def is_error(self) -> bool:
        return self.result is None or bool(self.result.is_error)


class _Failure(Exception):
    """A call failed in a way the reconnect policy handles (timeout, dead connection)."""

    def __init__(self, reason: str, error: MCPError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


@dataclass(eq=False)
class _ServerState:
    spec: ServerSpec
    conn: Connection | None = None
    generation: int = 0
    in_flight: int = 0
    broken_generation: int | None = None
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    changed: anyio.Event = field(default_factory=anyio.Event)
    tools: list[Tool] | None = None
    metric_attributes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metric_attributes = {"server": self.spec.name}

    def notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()


class _Policy(Protocol):
    async def call(
        self,
        host: MCPHostManager,
        state: _ServerState,
        tool: str,
        arguments: Mapping[str, Any],
        meta: dict[str, Any] | None,
        timeout: float,
    ) -> ToolCallOutcome: ...


def _classify(error: MCPError) -> str | None:
    if error.code == REQUEST_TIMEOUT:
        return "timeout"
    if error.code == CONNECTION_CLOSED:
        return "connection_closed"
    return None


class _Naive:
    async def call(
        self,
        host: MCPHostManager,
        state: _ServerState,
        tool: str,
        arguments: Mapping[str, Any],
        meta: dict[str, Any] | None,
        timeout: float,
    ) -> ToolCallOutcome:
        try:
            conn = await host._ensure_connected(state)
        except RuntimeFailure as exc:
            return ToolCallOutcome(None, error=str(exc), error_type="connect_failed")
        try:
            result = await host._call_on(state, conn, tool, arguments, meta, timeout, counted=False)
        except _Failure as failure:
            # The original handler: tear down whatever connection is current and respawn now,
            # whoever else is using it.
            try:
                with host._reconnect_span(state, reason=failure.reason, decision="performed"):
                    await host._replace(state, reason=failure.reason)
            except RuntimeFailure as exc:
                # The respawn failed too (the server is unreachable for now): the call fails
                # with both causes; the next call connects lazily again.
                return ToolCallOutcome(
                    None, error=f"{failure.error.message}; then {exc}", error_type=failure.reason
                )
            return ToolCallOutcome(None, error=failure.error.message, error_type=failure.reason)
        return ToolCallOutcome(result)


class _Coordinated:
    async def call(
        self,
        host: MCPHostManager,
        state: _ServerState,
        tool: str,
        arguments: Mapping[str, Any],
        meta: dict[str, Any] | None,
        timeout: float,
    ) -> ToolCallOutcome:
        failure: _Failure | None = None
        for attempt in range(2):
            conn = state.conn
            if state.broken_generation is None and conn is not None and not conn.closed:
                # Fast path, inline (no coroutine of its own on every call): no await between
                # the check and the count, so no other task can break or replace the
                # connection in between; the lock only guards (re)connects.
                host._in_flight_add(state, +1)
            else:
                try:
                    conn = await self._enter(host, state)
                except RuntimeFailure as exc:
                    return ToolCallOutcome(None, error=str(exc), error_type="connect_failed")
            try:
                result = await host._call_on(
                    state, conn, tool, arguments, meta, timeout, counted=True
                )
            except _Failure as exc:
                failure = exc
                if state.broken_generation is None:
                    state.broken_generation = conn.generation
                await self._recover(host, state, conn.generation, exc.reason)
                continue
            return ToolCallOutcome(result, retried=attempt > 0)
        assert failure is not None
        return ToolCallOutcome(
            None, error=failure.error.message, error_type=failure.reason, retried=True
        )

    async def _enter(self, host: MCPHostManager, state: _ServerState) -> Connection:
        """Wait until the server has a healthy connection, then count this call in (the slow
        path of ``call``: the connection is broken, missing or closed)."""
        while True:
            async with state.lock:
                if state.broken_generation is None:
                    if state.conn is None or state.conn.closed:
                        await host._connect(state, reason="lazy")
                    assert state.conn is not None
                    host._in_flight_add(state, +1)
                    return state.conn
                waiter = state.changed
            await waiter.wait()

    async def _recover(
        self, host: MCPHostManager, state: _ServerState, generation: int, reason: str
    ) -> None:
        """Reconnect once the last in-flight call has ended; skip if someone already did."""
        deferred = False
        while True:
            async with state.lock:
                if state.generation > generation:
                    with host._reconnect_span(state, reason=reason, decision="skipped"):
                        return
                if state.in_flight == 0:
                    with host._reconnect_span(state, reason=reason, decision="performed"):
                        try:
                            await host._replace(state, reason=reason)
                        except RuntimeFailure:
                            # Nothing to retry on; the retry's own connect attempt reports it.
                            pass
                        finally:
                            state.broken_generation = None
                            state.notify()
                    return
                if not deferred:
                    deferred = True
                    with host._reconnect_span(state, reason=reason, decision="deferred"):
                        pass
                waiter = state.changed
            await waiter.wait()


RECONNECT_POLICIES: Mapping[str, _Policy] = {"naive": _Naive(), "coordinated": _Coordinated()}


class MCPHostManager:
    """Shared MCP connections for every agent of a runtime. Use as ``async with``."""

    def __init__(
        self,
        servers: list[ServerSpec],
        *,
        policy: ReconnectPolicyName = "coordinated",
        clock: Clock | None = None,
        events: RuntimeEvents | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        time_scale: float = 1.0,
    ) -> None:
        """Timeouts are in the clock's (scenario) seconds; ``time_scale`` converts them to the
        real seconds the SDK waits (live mode runs scenario time scaled)."""
        if policy not in RECONNECT_POLICIES:
            raise ConfigError(
                f"unknown reconnect policy; choose one of {sorted(RECONNECT_POLICIES)}",
                field="policies.reconnect",
                value=policy,
            )
        names = [s.name for s in servers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError("server names must be unique", field="servers", value=duplicates)
        self.policy_name = policy
        self._time_scale = time_scale
        self._policy = RECONNECT_POLICIES[policy]
        self._states = {s.name: _ServerState(s) for s in servers}
        self._clock = clock or LoopClock()
        self.events = events or RuntimeEvents(self._clock)
        self._tracer = trace.get_tracer("harness.runtime", tracer_provider=tracer_provider)
        meter = metrics.get_meter("harness.runtime", meter_provider=meter_provider)
        self._in_flight_metric = meter.create_up_down_counter(
            sc.HARNESS_MCP_IN_FLIGHT, unit="{call}", description="MCP tool calls in flight"
        )
        self._reconnects_metric = meter.create_counter(
            sc.HARNESS_MCP_RECONNECTS, unit="{reconnect}", description="MCP reconnects performed"
        )
        self._duration_metric = meter.create_histogram(
            sc.METRIC_MCP_CLIENT_OPERATION_DURATION,
            unit="s",
            description="MCP client operation duration",
        )
        self._tg: TaskGroup | None = None
        self._all_connections: list[Connection] = []
        self._tool_owner: dict[str, str] = {}
        self._call_metric_attributes: dict[str, dict[str, str]] = {}

    # -- resource --------------------------------------------------------------------------
    async def __aenter__(self) -> MCPHostManager:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        assert self._tg is not None
        return await self._tg.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Close every connection ever opened, orphans from naive races included.

        Before closing, each server's live connections that the manager no longer references
        (spawned by a racing reconnect and then overwritten) are recorded as orphans."""
        for name, state in self._states.items():
            live = self.live_connections(name)
            orphans = [c for c in live if c is not state.conn]
            self.events.record(
                "connections_at_close",
                server=name,
                live=len(live),
                orphans=len(orphans),
                generations=[c.generation for c in orphans],
            )
        with anyio.CancelScope(shield=True):
            for conn in self._all_connections:
                await conn.close()

    # -- public API ------------------------------------------------------------------------
    @property
    def servers(self) -> list[str]:
        return list(self._states)

    def in_flight(self, server: str) -> int:
        return self._state(server).in_flight

    def generation(self, server: str) -> int:
        return self._state(server).generation

    def live_connections(self, server: str | None = None) -> list[Connection]:
        """Connections still open, including ones no longer referenced (orphans)."""
        return [
            c
            for c in self._all_connections
            if not c.closed and (server is None or c.server == server)
        ]

    async def list_tools(self) -> dict[str, list[Tool]]:
        """Tools of every server, connecting lazily; a tool name maps to its server."""
        out: dict[str, list[Tool]] = {}
        for name, state in self._states.items():
            if state.tools is None:
                conn = await self._ensure_connected(state)
                if conn.client is None:
                    raise RuntimeFailure(f"MCP server {name!r} closed the connection")
                listed = await conn.client.list_tools()
                state.tools = list(listed.tools)
            out[name] = list(state.tools)
            for tool in state.tools:
                self._tool_owner.setdefault(tool.name, name)
        return out

    def server_of(self, tool: str) -> str | None:
        return self._tool_owner.get(tool)

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        meta: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> ToolCallOutcome:
        """Call ``tool`` on ``server`` under the reconnect policy; never raises for call errors.

        ``timeout`` overrides the server's call timeout for this call (a per-tool timeout)."""
        state = self._states.get(server) or self._state(server)
        limit = state.spec.timeout if timeout is None else timeout
        return await self._policy.call(self, state, tool, arguments, meta, limit)

    # -- machinery shared by the policies --------------------------------------------------
    def _state(self, server: str) -> _ServerState:
        try:
            return self._states[server]
        except KeyError:
            raise RuntimeFailure(f"no MCP server named {server!r} is configured") from None

    def _in_flight_add(self, state: _ServerState, delta: int) -> None:
        state.in_flight += delta
        self._in_flight_metric.add(delta, state.metric_attributes)
        if delta < 0 and state.broken_generation is not None:
            # Only a pending reconnect waits for the count to drop.
            state.notify()

    async def _call_on(
        self,
        state: _ServerState,
        conn: Connection,
        tool: str,
        arguments: Mapping[str, Any],
        meta: dict[str, Any] | None,
        timeout: float,
        *,
        counted: bool,
    ) -> CallToolResult:
        """One call on one connection; SDK timeouts and dead connections become ``_Failure``.

        ``counted`` says the policy already counted the call in (under its lock)."""
        if not counted:
            self._in_flight_add(state, +1)
        # The start event's clock reading is the call's start.
        started = self.events.record(
            "call_started",
            server=state.spec.name,
            tool=tool,
            generation=conn.generation,
            in_flight=state.in_flight,
            timeout=timeout,
        ).time
        outcome = "ok"
        try:
            client = conn.client
            if client is None:
                raise MCPError(CONNECTION_CLOSED, "Connection closed")
            result = await client.call_tool(
                tool,
                arguments if type(arguments) is dict else dict(arguments),
                read_timeout_seconds=timeout * self._time_scale,
                meta=cast(RequestParamsMeta, meta) if meta is not None else None,
            )
            if result.is_error:
                outcome = "tool_error"
            return result
        except MCPError as error:
            reason = _classify(error)
            outcome = reason or f"mcp_error_{error.code}"
            if reason is None:
                return CallToolResult(
                    content=[TextContent(type="text", text=error.message)], is_error=True
                )
            raise _Failure(reason, error) from error
        except anyio.get_cancelled_exc_class():
            outcome = "cancelled"  # the caller went away (a watchdog, a cancelled agent)
            raise
        finally:
            self._in_flight_add(state, -1)
            elapsed = self._clock.now() - started
            attributes = self._call_metric_attributes.get(tool)
            if attributes is None:
                attributes = {sc.MCP_METHOD_NAME: "tools/call", sc.GEN_AI_TOOL_NAME: tool}
                self._call_metric_attributes[tool] = attributes
            self._duration_metric.record(elapsed, attributes)
            self.events.record(
                "call_ended",
                server=state.spec.name,
                tool=tool,
                generation=conn.generation,
                outcome=outcome,
                duration=elapsed,
                in_flight=state.in_flight,
            )

    async def _ensure_connected(self, state: _ServerState) -> Connection:
        async with state.lock:
            if state.conn is None or state.conn.closed:
                return await self._connect(state, reason="lazy")
            return state.conn

    async def _connect(self, state: _ServerState, *, reason: str) -> Connection:
        assert self._tg is not None, "MCPHostManager used outside 'async with'"
        state.generation += 1
        generation = state.generation
        name = state.spec.name
        self.events.record("connecting", server=name, generation=generation, reason=reason)
        try:
            conn = await Connection.open(
                self._tg, server=name, generation=generation, transport=state.spec.transport
            )
        except Exception as exc:
            self.events.record("connect_failed", server=name, generation=generation, error=str(exc))
            raise RuntimeFailure(f"could not connect to MCP server {name!r}: {exc}") from exc
        self._all_connections.append(conn)
        state.conn = conn
        self.events.record("connected", server=name, generation=generation)
        return conn

    async def _replace(self, state: _ServerState, *, reason: str) -> None:
        """Close the current connection (whoever uses it) and open a new one."""
        old = state.conn
        state.conn = None
        if old is not None:
            await old.close()
        self._reconnects_metric.add(1, {"server": state.spec.name, "reason": reason})
        await self._connect(state, reason=reason)

    @contextmanager
    def _reconnect_span(self, state: _ServerState, *, reason: str, decision: str) -> Iterator[None]:
        attributes: dict[str, str | int] = {
            "harness.mcp.server": state.spec.name,
            "harness.reconnect.reason": reason,
            "harness.mcp.in_flight": state.in_flight,
            "harness.mcp.generation": state.generation,
            sc.HARNESS_RECONNECT_DECISION: decision,
        }
        self.events.record(
            "reconnect",
            server=state.spec.name,
            reason=reason,
            decision=decision,
            in_flight=state.in_flight,
            generation=state.generation,
        )
        with self._tracer.start_as_current_span(
            sc.HARNESS_MCP_RECONNECT, attributes=attributes
        ) as span:
            try:
                yield
            except RuntimeFailure as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                span.set_attribute(sc.ERROR_TYPE, "connect_failed")
                raise
