"""The middleware that makes a fake server scripted and observable.

It sits inside the SDK's span middleware (so a scripted latency is inside the SERVER span) and,
for every request: logs it, applies the script (slow start on ``initialize``; stderr flood,
latency, hang, crash, protocol error or scripted result on ``tools/call``) and logs how it
ended. Vault values are never logged: results are not written to the event log at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, INVALID_PARAMS, CallToolResult, ListToolsResult
from pydantic import BaseModel

from fake_servers.mcp._legacy import LEGACY_METHODS, legacy_result
from fake_servers.mcp._results import scripted_result, text_result
from fake_servers.mcp._script import Behaviour, DrawnLatency
from harness.telemetry.semconv import META_CONTEXT_ID

if TYPE_CHECKING:
    from fake_servers.mcp._base import FakeServer
    from fake_servers.mcp._declared import DeclaredTools

__all__ = ["BehaviourMiddleware", "connection_closed"]

# The first request of a connection: the legacy handshake, or the modern discovery probe.
_OPENING_METHODS = frozenset({"initialize", "server/discover"})


def connection_closed() -> MCPError:
    """The error the SDK gives every call on a connection that closed under it."""
    return MCPError(code=CONNECTION_CLOSED, message="Connection closed")


class BehaviourMiddleware:
    """Applies ``fake.script`` and records ``fake.events``; one per server (all connections)."""

    def __init__(self, fake: FakeServer) -> None:
        self._fake = fake
        self._calls: Counter[str] = Counter()
        self._total_calls = 0
        self._unknown_ids = 0
        # Created on first use: inside the loop that serves the requests.
        self._serial: anyio.Lock | None = None
        # Fields of every request being handled: a stop by signal records them as cancelled.
        self.in_flight: dict[int, dict[str, Any]] = {}
        # (connection, request id) of every request answered (result or error written): a
        # cancel naming one crossed its answer on the wire.
        self._answered: set[tuple[Any, str]] = set()
        # The first call's latency of each behaviour with a drawn latency (``per_run`` reuses it).
        self._latencies: dict[int, float] = {}

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.request_id is None:  # notifications: the dispatcher already acted on them
            if ctx.method == "notifications/cancelled":
                await self._cancel_notice(ctx)
            return await call_next(ctx)
        fake = self._fake
        if fake.script.sdk == "1.x" and ctx.method not in LEGACY_METHODS:
            # An mcp 1.x server validates every request against the methods it knows.
            raise MCPError(code=INVALID_PARAMS, message="Invalid request parameters", data="")
        clock = fake.clock
        params = ctx.params or {}
        meta = ctx.meta or {}
        context_id = meta.get(META_CONTEXT_ID)
        state = ctx.lifespan_context
        fields: dict[str, Any] = {
            "connection": state.get("connection") if isinstance(state, dict) else None,
            "method": ctx.method,
            "request_id": str(ctx.request_id),
            "context_id": context_id if isinstance(context_id, str) else None,
        }
        behaviour: Behaviour | None = None
        answer: Callable[[], Awaitable[HandlerResult]] = lambda: call_next(ctx)  # noqa: E731
        invalid: str | None = None
        if ctx.method == "tools/call":
            tool = str(params.get("name"))
            arguments = params.get("arguments") or {}
            self._calls[tool] += 1
            self._total_calls += 1
            index = self._calls[tool]
            fields.update(tool=tool, call_index=index, arguments=arguments)
            behaviour = self._select(tool, index, arguments)
            declared = fake.declared
            if tool in declared:
                invalid = declared.check_arguments(tool, arguments)
                answer = _declared_answer(declared, tool, arguments, fields)
        elif ctx.method == "tools/list" and fake.declared.tools:
            answer = _with_declared(fake.declared, call_next, ctx)
        start = clock.now()
        fake.log("request", time=start, **fields)
        detail: dict[str, Any] = {}
        key = id(fields)
        self.in_flight[key] = fields
        try:
            if fake.crashed:
                raise connection_closed()
            with fake.track_call() as scope:
                if ctx.method in _OPENING_METHODS and fake.script.slow_start:
                    detail["slow_start"] = fake.script.slow_start
                    await clock.sleep(fake.script.slow_start)
                if invalid is not None:
                    detail["invalid_arguments"] = True
                    result: HandlerResult = text_result(invalid, is_error=True)
                elif fake.script.requests == "serial" and ctx.method not in _OPENING_METHODS:
                    # A single-threaded server: a tools/list waits behind a busy call too.
                    async with self._serial_lock():
                        result = await self._apply(behaviour, ctx, answer, fields, detail)
                else:
                    result = await self._apply(behaviour, ctx, answer, fields, detail)
            if scope.cancelled_caught:  # only a crash cancels this scope itself
                raise connection_closed()
        except anyio.get_cancelled_exc_class():
            if detail.get("after_cancel"):
                # The work went on past the cancel and finished (its answer, if any, written
                # by the fake itself: the SDK drops it).
                now = clock.now()
                fake.log("finished", time=now, duration=now - start, detail=detail, **fields)
                raise
            if fake.script.sdk == "1.x":
                # mcp 1.x wrote nothing for a request cut off by shutdown; 2.x answers it with
                # "Connection closed". Marking it cancelled by the peer keeps the 2.x
                # dispatcher silent.
                _silence(ctx)
            if key in self.in_flight:  # else the server's stop already recorded it
                now = clock.now()
                fake.log(
                    "cancelled", time=now, duration=now - start, detail=fake.stop_detail, **fields
                )
            raise
        except MCPError as exc:
            self._answered.add((fields["connection"], fields["request_id"]))
            error = {"code": exc.error.code, "message": exc.error.message}
            fake.log(
                "errored", time=clock.now(), duration=clock.now() - start, detail=error, **fields
            )
            raise
        except Exception as exc:
            self._answered.add((fields["connection"], fields["request_id"]))
            error = {"exception": type(exc).__qualname__}
            fake.log(
                "errored", time=clock.now(), duration=clock.now() - start, detail=error, **fields
            )
            raise
        finally:
            self.in_flight.pop(key, None)
        self._answered.add((fields["connection"], fields["request_id"]))
        is_error = isinstance(result, CallToolResult) and result.is_error
        fake.log(
            "errored" if is_error else "finished",
            time=clock.now(),
            duration=clock.now() - start,
            detail={**detail, "is_error": True} if is_error else detail,
            **fields,
        )
        if fake.script.sdk == "1.x":
            result = legacy_result(result)
        return result

    async def _cancel_notice(self, ctx: ServerRequestContext[Any, Any]) -> None:
        """Record a client's ``notifications/cancelled``; one for a request already answered
        (the cancel and the answer crossed) crashes the server under
        ``cancel_after_response: crash``, as mcp 1.27's responder asserts it was not answered."""
        fake = self._fake
        cancelled = (ctx.params or {}).get("requestId")
        state = ctx.lifespan_context
        connection = state.get("connection") if isinstance(state, dict) else None
        request_id = None if cancelled is None else str(cancelled)
        answered = (connection, request_id) in self._answered
        notice = {"method": ctx.method, "request_id": request_id, "connection": connection}
        detail: dict[str, Any] = {"after_response": True} if answered else {}
        fake.log("cancel_notice", time=fake.clock.now(), detail=detail, **notice)
        if answered and fake.script.cancel_after_response == "crash":
            crash = {"cancel_after_response": True, "error": REQUEST_ALREADY_RESPONDED}
            fake.log("crashed", time=fake.clock.now(), detail=crash, **notice)
            await fake.crash_with(REQUEST_ALREADY_RESPONDED)

    def _serial_lock(self) -> anyio.Lock:
        if self._serial is None:
            self._serial = anyio.Lock()
        return self._serial

    def _select(self, tool: str, index: int, arguments: dict[str, Any]) -> Behaviour | None:
        script = self._fake.script
        limit = script.crash_after_calls
        # Exactly the (N+1)-th call: in memory a reconnecting client is served again, as by a
        # respawned process.
        if limit is not None and self._total_calls == limit + 1:
            return Behaviour(crash=script.crash_after)
        tool_script = script.for_tool(tool)
        return tool_script.select(index, arguments) if tool_script is not None else None

    def _latency(self, behaviour: Behaviour, fields: dict[str, Any]) -> float:
        """The behaviour's latency for this call. A distribution gives its first call
        ``first`` when set; any other call draws from the server's seeded randomness by tool
        and call index (the same call gets the same value for a seed, whatever else runs),
        and under ``draw: per_run`` every call reuses the first one's value."""
        latency = behaviour.latency
        if not isinstance(latency, DrawnLatency):
            return latency
        used = self._latencies.get(id(behaviour))
        if used is not None and latency.draw == "per_run":
            return used
        if used is None and latency.first is not None:
            drawn = latency.first
        else:
            drawn = latency.value(
                self._fake.rng.fork(f"latency/{fields['tool']}/{fields['call_index']}")
            )
        self._latencies.setdefault(id(behaviour), drawn)
        return drawn

    async def _apply(
        self,
        behaviour: Behaviour | None,
        ctx: ServerRequestContext[Any, Any],
        answer: Callable[[], Awaitable[HandlerResult]],
        fields: dict[str, Any],
        detail: dict[str, Any],
    ) -> HandlerResult:
        if behaviour is None:
            return await answer()
        fake = self._fake
        if behaviour.forget_sessions:
            forgotten = fake.forget_sessions()
            now = fake.clock.now()
            fake.log("sessions_forgotten", time=now, detail={"sessions": forgotten}, **fields)
        if behaviour.stderr_bytes:
            fake.flood_stderr(behaviour.stderr_bytes)
        if behaviour.unknown_id_response:
            self._unknown_ids += 1
            unknown = UNKNOWN_ID_BASE + self._unknown_ids
            if await _write_response(ctx, unknown, _EMPTY_RESULT):
                detail["unknown_id_response"] = unknown
        persist = behaviour.ignore_cancel or behaviour.late_response
        # Shielded: a cancel (or a closed connection) does not stop the work; it is seen at
        # the first checkpoint after it, and the SDK drops the answer.
        with anyio.CancelScope(shield=persist):
            latency = self._latency(behaviour, fields)
            if latency:
                await fake.clock.sleep(latency)
            if behaviour.hang:
                await anyio.sleep_forever()
            if behaviour.crash is not None:
                fake.log(
                    "crashed", time=fake.clock.now(), detail=behaviour.crash.model_dump(), **fields
                )
                await fake.crash(behaviour.crash)
            if behaviour.error is not None:
                raise MCPError(code=behaviour.error.code, message=behaviour.error.message)
            result = scripted_result(behaviour.result) if behaviour.result else await answer()
        if persist:
            try:
                await anyio.lowlevel.checkpoint()
            except anyio.get_cancelled_exc_class():
                # Cancelled while it worked on: the work is done all the same.
                detail["after_cancel"] = True
                if behaviour.late_response and ctx.request_id is not None:
                    with anyio.CancelScope(shield=True):
                        body = _dump(result)
                        if await _write_response(ctx, ctx.request_id, body):
                            detail["late_response"] = True
                raise
        return result


def _dump(result: HandlerResult) -> dict[str, Any]:
    if isinstance(result, BaseModel):
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dict(result) if isinstance(result, dict) else {}


# What an mcp 1.27 server dies of when a cancel lands after its handler returned.
REQUEST_ALREADY_RESPONDED = "AssertionError: Request already responded to"
UNKNOWN_ID_BASE = 1_000_000
_EMPTY_RESULT: dict[str, Any] = {"content": [], "isError": False}


def _declared_answer(
    declared: DeclaredTools, tool: str, arguments: Any, fields: dict[str, Any]
) -> Callable[[], Awaitable[HandlerResult]]:
    async def answer() -> HandlerResult:
        return declared.answer(tool, arguments, fields)

    return answer


def _with_declared(
    declared: DeclaredTools, call_next: CallNext, ctx: ServerRequestContext[Any, Any]
) -> Callable[[], Awaitable[HandlerResult]]:
    async def answer() -> HandlerResult:
        listed = await call_next(ctx)
        if isinstance(listed, ListToolsResult):
            return listed.model_copy(update={"tools": [*listed.tools, *declared.listing()]})
        if isinstance(listed, dict):
            extra = [
                t.model_dump(by_alias=True, mode="json", exclude_none=True)
                for t in declared.listing()
            ]
            return {**listed, "tools": [*listed.get("tools", []), *extra]}
        return listed

    return answer


def _dispatch_context(ctx: ServerRequestContext[Any, Any]) -> Any:
    """The SDK's per-request dispatch context (JSON-RPC transports only): the fake reaches into
    it to write what a well-behaved server never would."""
    return getattr(ctx.session, "_request_outbound", None)


def _silence(ctx: ServerRequestContext[Any, Any]) -> None:
    event = getattr(_dispatch_context(ctx), "cancel_requested", None)
    if isinstance(event, anyio.Event):
        event.set()


async def _write_response(
    ctx: ServerRequestContext[Any, Any], request_id: Any, result: dict[str, Any]
) -> bool:
    """Write a JSON-RPC response with ``request_id`` straight to the connection (False when
    there is no wire: direct dispatch)."""
    dispatcher = getattr(_dispatch_context(ctx), "_dispatcher", None)
    write = getattr(dispatcher, "_write_result", None)
    if write is None:
        return False
    await write(request_id, result)
    return True
