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
from types import EllipsisType, TracebackType
from typing import Any, Literal, cast

import anyio
from anyio.abc import TaskGroup
from mcp import MCPError, StdioServerParameters
from mcp.types import CallToolResult, RequestParamsMeta, TextContent, Tool
from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode

from harness.clock import Clock, LoopClock
from harness.errors import ConfigError, RuntimeFailure
from harness.runtime._connection import CallRegistry, Connection, StderrSinks, reply_guard
from harness.runtime.events import RuntimeEvents
from harness.telemetry import semconv as sc

__all__ = [
    "RECONNECT_POLICIES",
    "ConnectionKnobs",
    "MCPHostManager",
    "ReconnectPolicyName",
    "ServerSpec",
    "ToolCallOutcome",
]

ReconnectPolicyName = Literal["naive", "coordinated"]

CONNECTION_CLOSED = -32000
REQUEST_TIMEOUT = -32001
INVALID_REQUEST = -32600
RECONNECT_POLICIES = ("naive", "coordinated")

# How a lost session reaches a call: the server's own 404 body, or the SDK's stand-in for a
# 404 without one.
_SESSION_LOST = frozenset({"Session not found", "Session terminated"})

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
    timeout: float | None = DEFAULT_CALL_TIMEOUT
    """Seconds a call may take; ``None``: no timeout."""
    tool_timeouts: Mapping[str, float | None] = field(default_factory=dict, compare=False)
    """Per-tool timeouts over ``timeout``."""
    wrap: Callable[[Any], Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        given = [x for x in (self.command, self.url, self.instance) if x is not None]
        if len(given) != 1:
            raise ConfigError(
                "a server needs exactly one of command, url or instance",
                field=f"servers.{self.name}",
            )
        for where, value in (("timeout", self.timeout), *self.tool_timeouts.items()):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigError(
                    "timeout must be a positive number of seconds (or none)",
                    field=f"servers.{self.name}.{where}",
                    value=value,
                )

    def timeout_of(self, tool: str) -> float | None:
        return self.tool_timeouts.get(tool, self.timeout)

    def transport(
        self, *, errlog: Any = None, on_stray: Callable[[Any], None] | None = None
    ) -> Any:
        """A fresh client transport (or in-process server) for one connection attempt;
        ``errlog``: a stdio server's stderr; ``on_stray``: end the session on a reply nobody
        waits for, and say so to this callback."""
        if self.command is not None:
            from mcp.client.stdio import stdio_client

            base: Any = (
                stdio_client(self.command)
                if errlog is None
                else stdio_client(self.command, errlog=errlog)
            )
        elif self.url is not None:
            from mcp.client.streamable_http import streamable_http_client

            base = streamable_http_client(self.url)
        elif self.wrap is not None or on_stray is not None:
            # Wrapping needs a Transport object; the SDK only builds one for in-process servers
            # inside Client, so build the same in-memory transport here.
            from mcp.client._memory import InMemoryTransport

            base = InMemoryTransport(self.instance)
        else:
            return self.instance
        if self.wrap is not None:
            base = self.wrap(base)
        return reply_guard(base, on_stray) if on_stray is not None else base


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
    idle_waiters: int = 0
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    changed: anyio.Event = field(default_factory=anyio.Event)
    tools: list[Tool] | None = None
    disconnected: bool = False
    """Left disconnected by an aborting cancel (``cancel_effect: abort_disconnect``)."""
    metric_attributes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metric_attributes = {"server": self.spec.name}

    def notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()


@dataclass(frozen=True, slots=True)
class ConnectionKnobs:
    """The connection behaviour of the host, knob by knob (``PoliciesConfig``'s MCP connection
    knobs document each value)."""

    reconnect_on: Literal["timeout_or_close", "close"] = "timeout_or_close"
    reconnect_when: Literal["at_once", "when_idle"] = "when_idle"
    reconnect_coordination: Literal["none", "per_generation"] = "per_generation"
    call_retries: int = 1
    call_timeout: Literal["configured", "none"] = "configured"
    session_open: Literal["eager", "lazy", "per_call"] = "eager"
    session_lock: bool = True
    tools_refresh_after_timeout: bool = False
    tools_on_failed_refresh: Literal["evict", "keep"] = "keep"
    session_not_found: Literal["terminal", "reinitialize"] = "reinitialize"
    late_reply: Literal["ignore", "close_session"] = "ignore"
    cancel_effect: Literal["notify", "abort_transport", "abort_disconnect"] = "notify"
    stderr: Literal["inherit", "drain", "pipe_unread"] = "inherit"

    @classmethod
    def preset(cls, policy: ReconnectPolicyName) -> ConnectionKnobs:
        """The knobs of a bundled ``reconnect`` policy."""
        if policy == "naive":
            return cls(reconnect_when="at_once", reconnect_coordination="none", call_retries=0)
        return cls()

    @classmethod
    def from_policies(cls, policies: Any) -> ConnectionKnobs:
        """The knobs from an object with one attribute per knob (``PoliciesConfig``)."""
        return cls(**{name: getattr(policies, name) for name in cls.__dataclass_fields__})


def _classify(error: MCPError, knobs: ConnectionKnobs) -> str | None:
    if error.code == REQUEST_TIMEOUT:
        return "timeout"
    if error.code == CONNECTION_CLOSED:
        return "connection_closed"
    if (
        error.code == INVALID_REQUEST
        and knobs.session_not_found == "reinitialize"
        and error.message in _SESSION_LOST
    ):
        return "session_not_found"
    return None


class _ReconnectPolicy:
    """One call under the knobs: acquire a connection, call, and on a failure the policy
    handles, refresh the catalogue, reconnect and retry as the knobs say."""

    def __init__(self, knobs: ConnectionKnobs) -> None:
        self.knobs = knobs

    async def call(
        self,
        host: MCPHostManager,
        state: _ServerState,
        tool: str,
        arguments: Mapping[str, Any],
        meta: dict[str, Any] | None,
        timeout: float | None,
    ) -> ToolCallOutcome:
        knobs = self.knobs
        # per_call: a session of the call's own, closed after it; nothing shared to reconnect.
        own = knobs.session_open == "per_call"
        attempt = 0
        while True:
            if state.disconnected:
                host.events.record(
                    "call_refused", server=state.spec.name, tool=tool, reason="disconnected"
                )
                return ToolCallOutcome(
                    None,
                    error=f"MCP server {state.spec.name!r} is disconnected",
                    error_type="disconnected",
                    retried=attempt > 0,
                )
            try:
                if own:
                    conn = await host._open(state, reason="per_call")
                    host._in_flight_add(state, +1)
                else:
                    conn = await self._acquire(host, state)
            except RuntimeFailure as exc:
                return ToolCallOutcome(
                    None, error=str(exc), error_type="connect_failed", retried=attempt > 0
                )
            try:
                result = await host._call_on(state, conn, tool, arguments, meta, timeout)
            except _Failure as failure:
                if failure.reason == "timeout" and knobs.tools_refresh_after_timeout:
                    await host._refresh_tools(state, conn, timeout)
                if state.disconnected or (
                    failure.reason == "timeout" and knobs.reconnect_on == "close"
                ):
                    # A server an aborting cancel disconnected is not reconnected either.
                    return ToolCallOutcome(
                        None, error=failure.error.message, error_type="timeout", retried=attempt > 0
                    )
                respawn_error = (
                    None if own else await self._reconnect(host, state, conn, failure.reason)
                )
                if respawn_error is not None:
                    # The respawn failed too (the server is unreachable for now): the call
                    # fails with both causes; the next call connects lazily again.
                    return ToolCallOutcome(
                        None,
                        error=f"{failure.error.message}; then {respawn_error}",
                        error_type=failure.reason,
                        retried=attempt > 0,
                    )
                # A lost session is re-initialized and the call tried once more on it, whatever
                # the retry budget: that is what the re-initialize knob means.
                if attempt < knobs.call_retries or (
                    failure.reason == "session_not_found" and attempt == 0
                ):
                    attempt += 1
                    continue
                return ToolCallOutcome(
                    None,
                    error=failure.error.message,
                    error_type=failure.reason,
                    retried=attempt > 0,
                )
            finally:
                if own:
                    await conn.close()
            return ToolCallOutcome(result, retried=attempt > 0)

    async def _acquire(self, host: MCPHostManager, state: _ServerState) -> Connection:
        """A connection to call on, with this call counted in flight on it."""
        if self.knobs.reconnect_coordination == "none":
            conn = await host._ensure_connected(state)
            host._in_flight_add(state, +1)
            return conn
        current = state.conn
        if state.broken_generation is None and current is not None and not current.closed:
            # Fast path, inline: no await between the check and the count, so no other task can
            # break or replace the connection in between; the lock only guards (re)connects.
            host._in_flight_add(state, +1)
            return current
        return await self._enter(host, state)

    async def _enter(self, host: MCPHostManager, state: _ServerState) -> Connection:
        """Wait until the server has a healthy connection, then count this call in (the slow
        path: the connection is broken, missing or closed)."""
        while True:
            async with state.lock:
                if state.broken_generation is None:
                    if state.conn is None or state.conn.closed:
                        if not self.knobs.session_lock:
                            break
                        await host._connect(state, reason="lazy")
                    assert state.conn is not None
                    host._in_flight_add(state, +1)
                    return state.conn
                waiter = state.changed
            await waiter.wait()
        # Unlocked session creation: concurrent callers each open one.
        conn = await host._connect(state, reason="lazy")
        host._in_flight_add(state, +1)
        return conn

    async def _reconnect(
        self, host: MCPHostManager, state: _ServerState, conn: Connection, reason: str
    ) -> str | None:
        """Replace the failed connection as the knobs say; the respawn's error when an
        uncoordinated respawn failed."""
        if self.knobs.reconnect_coordination == "per_generation":
            if state.broken_generation is None:
                state.broken_generation = conn.generation
            await self._recover(host, state, conn.generation, reason)
            return None
        if self.knobs.reconnect_when == "when_idle":
            await self._wait_idle(host, state, reason)
        try:
            with host._reconnect_span(state, reason=reason, decision="performed"):
                await host._replace(state, reason=reason)
        except RuntimeFailure as exc:
            return str(exc)
        return None

    async def _wait_idle(self, host: MCPHostManager, state: _ServerState, reason: str) -> None:
        if state.in_flight == 0:
            return
        with host._reconnect_span(state, reason=reason, decision="deferred"):
            pass
        state.idle_waiters += 1
        try:
            while state.in_flight > 0:
                await state.changed.wait()
        finally:
            state.idle_waiters -= 1

    async def _recover(
        self, host: MCPHostManager, state: _ServerState, generation: int, reason: str
    ) -> None:
        """Reconnect (at once, or once the last in-flight call has ended); skip if someone
        already did."""
        deferred = False
        while True:
            async with state.lock:
                if state.generation > generation:
                    with host._reconnect_span(state, reason=reason, decision="skipped"):
                        return
                if state.in_flight == 0 or self.knobs.reconnect_when == "at_once":
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


class MCPHostManager:
    """Shared MCP connections for every agent of a runtime. Use as ``async with``."""

    def __init__(
        self,
        servers: list[ServerSpec],
        *,
        policy: ReconnectPolicyName = "coordinated",
        knobs: ConnectionKnobs | None = None,
        clock: Clock | None = None,
        events: RuntimeEvents | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        time_scale: float = 1.0,
    ) -> None:
        """Timeouts are in the clock's (scenario) seconds; ``time_scale`` converts them to the
        real seconds the SDK waits (live mode runs scenario time scaled). ``knobs`` default to
        the ``policy`` preset's."""
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
        self.knobs = knobs if knobs is not None else ConnectionKnobs.preset(policy)
        self._time_scale = time_scale
        self._policy = _ReconnectPolicy(self.knobs)
        self.catalogue_version = 0
        """Bumped whenever a server's tool catalogue changes (refreshed or evicted)."""
        self._stderr = StderrSinks(self.knobs.stderr)
        self._calls = CallRegistry()
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
        self._stderr.close()

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
                if self.knobs.session_open == "eager":
                    conn = await self._ensure_connected(state)
                    state.tools = await self._list_on(conn)
                else:
                    # The catalogue on a short-lived session; the shared one opens later.
                    conn = await self._open(state, reason="catalogue")
                    try:
                        state.tools = await self._list_on(conn)
                    finally:
                        await conn.close()
            out[name] = list(state.tools)
            for tool in state.tools:
                self._tool_owner.setdefault(tool.name, name)
        return out

    async def _list_on(self, conn: Connection) -> list[Tool]:
        if conn.client is None:
            raise RuntimeFailure(f"MCP server {conn.server!r} closed the connection")
        listed = await conn.client.list_tools()
        return list(listed.tools)

    def server_of(self, tool: str) -> str | None:
        return self._tool_owner.get(tool)

    @property
    def calls(self) -> CallRegistry:
        """The calls in flight, for client-side cancels (a user's Esc, a cancel fault)."""
        return self._calls

    async def call_tool(
        self,
        server: str,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        meta: dict[str, Any] | None = None,
        timeout: float | EllipsisType | None = ...,
    ) -> ToolCallOutcome:
        """Call ``tool`` on ``server`` under the knobs; never raises for call errors.

        ``timeout`` overrides the server's (and the tool's) timeout for this call; ``None``:
        none. A client-side cancel (``calls.cancel``) ends the call with an error result."""
        state = self._states.get(server) or self._state(server)
        if timeout is not ...:
            limit = timeout
        elif self.knobs.call_timeout == "none":
            limit = None
        else:
            limit = state.spec.timeout_of(tool)
        with self._calls.track(server, tool) as call, call.scope:
            return await self._policy.call(self, state, tool, arguments, meta, limit)
        self.events.record("call_cancelled_by_client", server=server, tool=tool, nth=call.nth)
        if self.knobs.cancel_effect != "notify":
            await self._abort_transport(state)
        return ToolCallOutcome(
            None, error="the call was cancelled by the client", error_type="cancelled"
        )

    # -- machinery shared by the policies --------------------------------------------------
    def _state(self, server: str) -> _ServerState:
        try:
            return self._states[server]
        except KeyError:
            raise RuntimeFailure(f"no MCP server named {server!r} is configured") from None

    def _in_flight_add(self, state: _ServerState, delta: int) -> None:
        state.in_flight += delta
        self._in_flight_metric.add(delta, state.metric_attributes)
        if delta < 0 and (state.broken_generation is not None or state.idle_waiters):
            # Only a pending reconnect waits for the count to drop.
            state.notify()

    async def _call_on(
        self,
        state: _ServerState,
        conn: Connection,
        tool: str,
        arguments: Mapping[str, Any],
        meta: dict[str, Any] | None,
        timeout: float | None,
    ) -> CallToolResult:
        """One call on one connection, already counted in flight; SDK timeouts, dead
        connections and (when re-initialized) lost sessions become ``_Failure``."""
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
                read_timeout_seconds=None if timeout is None else timeout * self._time_scale,
                meta=cast(RequestParamsMeta, meta) if meta is not None else None,
            )
            if result.is_error:
                outcome = "tool_error"
            return result
        except MCPError as error:
            reason = _classify(error, self.knobs)
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
        if not self.knobs.session_lock:
            # Unserialised: callers that find no session each open one (the last one wins).
            conn = state.conn
            if conn is None or conn.closed:
                return await self._connect(state, reason="lazy")
            return conn
        async with state.lock:
            if state.conn is None or state.conn.closed:
                return await self._connect(state, reason="lazy")
            return state.conn

    async def _connect(self, state: _ServerState, *, reason: str) -> Connection:
        """Open the server's shared session (a new generation)."""
        conn = await self._open(state, reason=reason)
        state.conn = conn
        return conn

    async def _open(self, state: _ServerState, *, reason: str) -> Connection:
        """Open a session of the server (a new generation), not yet its shared one."""
        assert self._tg is not None, "MCPHostManager used outside 'async with'"
        state.generation += 1
        generation = state.generation
        spec = state.spec
        name = spec.name
        self.events.record("connecting", server=name, generation=generation, reason=reason)
        errlog = self._stderr.errlog(name) if spec.command is not None else None
        on_stray = None
        if self.knobs.late_reply == "close_session":

            def on_stray(request_id: Any) -> None:
                self.events.record(
                    "stray_reply", server=name, generation=generation, id=str(request_id)
                )

        try:
            conn = await Connection.open(
                self._tg,
                server=name,
                generation=generation,
                transport=lambda: spec.transport(errlog=errlog, on_stray=on_stray),
            )
        except Exception as exc:
            self.events.record("connect_failed", server=name, generation=generation, error=str(exc))
            raise RuntimeFailure(f"could not connect to MCP server {name!r}: {exc}") from exc
        self._all_connections.append(conn)
        self.events.record("connected", server=name, generation=generation)
        return conn

    async def _refresh_tools(
        self, state: _ServerState, conn: Connection, timeout: float | None
    ) -> None:
        """Re-list the server's tools on ``conn`` after a timed-out call; on failure keep or
        evict the catalogue as the knobs say."""
        name = state.spec.name
        self.events.record("tools_refresh", server=name, generation=conn.generation)
        try:
            with anyio.fail_after(None if timeout is None else timeout * self._time_scale):
                tools = await self._list_on(conn)
        except (TimeoutError, MCPError, RuntimeFailure) as exc:
            evict = self.knobs.tools_on_failed_refresh == "evict"
            self.events.record(
                "tools_refresh_failed",
                server=name,
                error=str(exc) or type(exc).__name__,
                decision="evicted" if evict else "kept",
            )
            if evict:
                state.tools = []
                for tool_name, owner in list(self._tool_owner.items()):
                    if owner == name:
                        del self._tool_owner[tool_name]
                self.catalogue_version += 1
            return
        state.tools = tools
        for tool in tools:
            self._tool_owner.setdefault(tool.name, name)
        self.catalogue_version += 1
        self.events.record("tools_refreshed", server=name, tools=len(tools))

    async def _abort_transport(self, state: _ServerState) -> None:
        """A cancel that aborts the transport: the server's session is closed (a stdio
        server's process ends with it) under every other call in flight on it; under
        ``abort_disconnect`` the server is left disconnected, and no call reconnects it."""
        disconnect = self.knobs.cancel_effect == "abort_disconnect"
        state.disconnected = state.disconnected or disconnect
        conn = state.conn
        self.events.record(
            "transport_aborted",
            server=state.spec.name,
            generation=None if conn is None else conn.generation,
            in_flight=state.in_flight,
            then="disconnected" if disconnect else "reopen_on_next_call",
        )
        if conn is not None and not conn.closed:
            await conn.close()

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
