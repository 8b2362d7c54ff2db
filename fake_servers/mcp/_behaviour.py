"""The middleware that makes a fake server scripted and observable.

It sits inside the SDK's span middleware (so a scripted latency is inside the SERVER span) and,
for every request: logs it, applies the script (slow start on ``initialize``; stderr flood,
latency, hang, crash, protocol error or scripted result on ``tools/call``) and logs how it
ended. Vault values are never logged: results are not written to the event log at all.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, CallToolResult

from fake_servers.mcp._results import scripted_result
from fake_servers.mcp._script import Behaviour
from harness.telemetry.semconv import META_CONTEXT_ID

if TYPE_CHECKING:
    from fake_servers.mcp._base import FakeServer

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

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.request_id is None:  # notifications: the dispatcher already acted on them
            if ctx.method == "notifications/cancelled":
                cancelled = (ctx.params or {}).get("requestId")
                state = ctx.lifespan_context
                self._fake.log(
                    "cancel_notice",
                    time=self._fake.clock.now(),
                    method=ctx.method,
                    request_id=None if cancelled is None else str(cancelled),
                    connection=state.get("connection") if isinstance(state, dict) else None,
                )
            return await call_next(ctx)
        fake = self._fake
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
        if ctx.method == "tools/call":
            tool = str(params.get("name"))
            arguments = params.get("arguments") or {}
            self._calls[tool] += 1
            self._total_calls += 1
            index = self._calls[tool]
            fields.update(tool=tool, call_index=index, arguments=arguments)
            behaviour = self._select(tool, index, arguments)
        start = clock.now()
        fake.log("request", time=start, **fields)
        detail: dict[str, Any] = {}
        try:
            if fake.crashed:
                raise connection_closed()
            with fake.track_call() as scope:
                if ctx.method in _OPENING_METHODS and fake.script.slow_start:
                    detail["slow_start"] = fake.script.slow_start
                    await clock.sleep(fake.script.slow_start)
                result = await self._apply(behaviour, ctx, call_next, fields)
            if scope.cancelled_caught:  # only a crash cancels this scope itself
                raise connection_closed()
        except anyio.get_cancelled_exc_class():
            fake.log("cancelled", time=clock.now(), duration=clock.now() - start, **fields)
            raise
        except MCPError as exc:
            error = {"code": exc.error.code, "message": exc.error.message}
            fake.log(
                "errored", time=clock.now(), duration=clock.now() - start, detail=error, **fields
            )
            raise
        except Exception as exc:
            error = {"exception": type(exc).__qualname__}
            fake.log(
                "errored", time=clock.now(), duration=clock.now() - start, detail=error, **fields
            )
            raise
        is_error = isinstance(result, CallToolResult) and result.is_error
        fake.log(
            "errored" if is_error else "finished",
            time=clock.now(),
            duration=clock.now() - start,
            detail={**detail, "is_error": True} if is_error else detail,
            **fields,
        )
        return result

    def _select(self, tool: str, index: int, arguments: dict[str, Any]) -> Behaviour | None:
        script = self._fake.script
        limit = script.crash_after_calls
        # Exactly the (N+1)-th call: in memory a reconnecting client is served again, as by a
        # respawned process.
        if limit is not None and self._total_calls == limit + 1:
            return Behaviour(crash=script.crash_after)
        tool_script = script.for_tool(tool)
        return tool_script.select(index, arguments) if tool_script is not None else None

    async def _apply(
        self,
        behaviour: Behaviour | None,
        ctx: ServerRequestContext[Any, Any],
        call_next: CallNext,
        fields: dict[str, Any],
    ) -> HandlerResult:
        if behaviour is None:
            return await call_next(ctx)
        fake = self._fake
        if behaviour.stderr_bytes:
            fake.flood_stderr(behaviour.stderr_bytes)
        if behaviour.latency:
            await fake.clock.sleep(behaviour.latency)
        if behaviour.hang:
            await anyio.sleep_forever()
        if behaviour.crash is not None:
            fake.log(
                "crashed", time=fake.clock.now(), detail=behaviour.crash.model_dump(), **fields
            )
            await fake.crash(behaviour.crash)
        if behaviour.error is not None:
            raise MCPError(code=behaviour.error.code, message=behaviour.error.message)
        if behaviour.result is not None:
            return scripted_result(behaviour.result)
        return await call_next(ctx)
