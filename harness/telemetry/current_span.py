"""The current span of a hot path, without the API's generator context managers."""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["CurrentSpan"]


class CurrentSpan:
    """``tracer.start_as_current_span`` for the per-tool-call span, as a plain class: the API's
    version nests two generator context managers, a measurable share of a fast tool call. Same
    span, same context, same handling of an escaping exception (recorded, status ERROR). The
    current context is read once and handed to both the tracer and the new span's context
    (the parent they would each look up)."""

    __slots__ = ("_context", "_span", "_token")

    def __init__(self, tracer: trace.Tracer, name: str, attributes: dict[str, Any]) -> None:
        self._context = otel_context.get_current()
        self._span = tracer.start_span(name, self._context, SpanKind.INTERNAL, attributes)
        self._token: object = None

    def __enter__(self) -> trace.Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span, self._context))
        return self._span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        span = self._span
        try:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            # As the API: BaseExceptions (cancellation) are not errors of the call.
            if isinstance(exc, Exception) and span.is_recording():
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            span.end()
