"""SERVER spans from a chosen ``TracerProvider``.

The SDK's ``OpenTelemetryMiddleware`` always uses the global provider. A fake server in sim
mode shares the process with the runtime but needs its own resource
(``service.name=fake-mcp-NAME``), so when a provider is given the SDK middleware is swapped for
this one, which makes the same span (name, kind, attributes, parent from ``_meta``) on the
given provider. Results are never recorded (vault values must not reach traces).
"""

from __future__ import annotations

from typing import Any

from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared._otel import extract_trace_context
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult
from opentelemetry.trace import SpanKind, StatusCode, TracerProvider

from harness.telemetry.semconv import (
    ERROR_TYPE,
    GEN_AI_OPERATION_NAME,
    GEN_AI_TOOL_NAME,
    JSONRPC_REQUEST_ID,
    MCP_METHOD_NAME,
    MCP_PROTOCOL_VERSION,
    RPC_RESPONSE_STATUS_CODE,
)

__all__ = ["use_tracer_provider"]


class _ServerSpans:
    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer("fake_servers.mcp")

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        name = ctx.params.get("name") if ctx.params else None
        target = name if isinstance(name, str) else None
        attributes: dict[str, Any] = {
            MCP_METHOD_NAME: ctx.method,
            MCP_PROTOCOL_VERSION: ctx.protocol_version,
        }
        if ctx.request_id is not None:
            attributes[JSONRPC_REQUEST_ID] = str(ctx.request_id)
        if ctx.method == "tools/call":
            attributes[GEN_AI_OPERATION_NAME] = "execute_tool"
            if target is not None:
                attributes[GEN_AI_TOOL_NAME] = target
        with self._tracer.start_as_current_span(
            f"{ctx.method} {target}" if target else ctx.method,
            kind=SpanKind.SERVER,
            attributes=attributes,
            context=extract_trace_context(ctx.meta),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                result = await call_next(ctx)
            except MCPError as exc:
                code = str(exc.error.code)
                span.set_attributes({ERROR_TYPE: code, RPC_RESPONSE_STATUS_CODE: code})
                span.set_status(StatusCode.ERROR, exc.error.message)
                raise
            except Exception as exc:
                span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
                span.set_status(StatusCode.ERROR)
                raise
            if isinstance(result, CallToolResult) and result.is_error:
                span.set_attribute(ERROR_TYPE, "tool_error")
                span.set_status(StatusCode.ERROR)
            return result


def use_tracer_provider(server: MCPServer, provider: TracerProvider) -> None:
    """Make ``server``'s SERVER spans on ``provider`` instead of the global provider."""
    chain = server.middleware
    for position, middleware in enumerate(chain):
        if isinstance(middleware, OpenTelemetryMiddleware):
            chain[position] = _ServerSpans(provider)
            return
    chain.insert(0, _ServerSpans(provider))
