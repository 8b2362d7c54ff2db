"""A process-global tracer provider that routes spans to the run that is active.

The ``mcp`` SDK takes its tracer from the global provider at import time, so its client and
server spans can only reach a run's trace through the global provider. ``install_router()``
sets, once per process, a global ``TracerProvider`` whose span processor and id generator
delegate to the *sink* attached at the time (``with router.attach(sink): ...``). A run (or a
test) attaches its own processors and seeded id generator, so runs in one process do not mix
their spans and sim runs keep deterministic ids. With no sink attached, every tracer behaves
like the API's no-op tracer (no span, no trace context injected), as if no provider were
installed.

A sink may also bring its own clock (``time_ns``): sim runs give span and event timestamps on
the virtual clock, so a trace shows the scenario's timeline (a 150 s timeout is 150 s in
Jaeger) and the same seed gives the same timestamps. The SDK reads the time through the module
global ``opentelemetry.sdk.trace.time_ns``; the router replaces that one function, checked at
install time so an SDK change fails loudly instead of silently mixing clocks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.util.types import Attributes

from harness.chaos_random import ChaosRandom
from harness.errors import ConfigError, HarnessDefect
from harness.telemetry.providers import SeededIdGenerator
from harness.telemetry.sdk_shim import replace_span_clock
from harness.telemetry.semconv import SERVICE_NAME, SERVICE_RUNTIME

__all__ = ["SpanRouter", "SpanSink", "install_router"]


@dataclass(eq=False)
class SpanSink:
    """Where one run's spans go, and how their ids are drawn. With ``one_trace`` every root
    span of the sink gets the same trace id, so a run with several roots (scheduled tasks
    beside the main agent, live mode's start-up) is still one trace."""

    processors: Sequence[SpanProcessor]
    rng: ChaosRandom | None = None
    time_ns: Callable[[], int] | None = None
    one_trace: bool = False
    _ids: IdGenerator = field(init=False)

    def __post_init__(self) -> None:
        ids = SeededIdGenerator(self.rng) if self.rng is not None else RandomIdGenerator()
        self._ids = _OneTraceIds(ids) if self.one_trace else ids


class _OneTraceIds(IdGenerator):
    """The first trace id drawn, for every root span after it."""

    def __init__(self, inner: IdGenerator) -> None:
        self._inner = inner
        self._trace_id: int | None = None

    def generate_span_id(self) -> int:
        return self._inner.generate_span_id()

    def generate_trace_id(self) -> int:
        if self._trace_id is None:
            self._trace_id = self._inner.generate_trace_id()
        return self._trace_id


class _RoutingIds(IdGenerator):
    def __init__(self, router: SpanRouter) -> None:
        self._router = router
        self._fallback = RandomIdGenerator()

    # Every span of the process passes here: read the router's slot directly.
    def generate_span_id(self) -> int:
        sink = self._router._current
        return (sink._ids if sink is not None else self._fallback).generate_span_id()

    def generate_trace_id(self) -> int:
        sink = self._router._current
        return (sink._ids if sink is not None else self._fallback).generate_trace_id()


def _key(span: ReadableSpan) -> int:
    # on_end receives a new ReadableSpan, not the started Span, but the SDK hands it the
    # started span's own SpanContext object: its identity names the span while it is open.
    return id(span.get_span_context())


class _RoutingProcessor(SpanProcessor):
    def __init__(self, router: SpanRouter) -> None:
        self._router = router
        # A span ends in the sink it started in, even if the sink changed meanwhile.
        self._owner: dict[int, SpanSink] = {}

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        sink = self._router._current
        if sink is None:
            return
        self._owner[_key(span)] = sink
        for processor in sink.processors:
            processor.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        sink = self._owner.pop(_key(span), None)
        if sink is None:
            return
        for processor in sink.processors:
            processor.on_end(span)

    def shutdown(self) -> None:
        self._owner.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        sink = self._router.current
        if sink is None:
            return True
        return all(p.force_flush(timeout_millis) for p in sink.processors)


class _SwitchTracer(trace.Tracer):
    """The SDK's tracer while a sink is attached, the no-op tracer otherwise."""

    def __init__(self, router: SpanRouter, real: trace.Tracer) -> None:
        self._router = router
        self._real = real
        self._noop = trace.NoOpTracer()

    # Every span of the process starts here: the API's signature, spelled out, forwards
    # positionally (re-packing *args/**kwargs costs a measurable share of a span).
    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        tracer = self._real if self._router._current is not None else self._noop
        return tracer.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        tracer = self._real if self._router._current is not None else self._noop
        return tracer.start_as_current_span(*args, **kwargs)


class _RoutingProvider(TracerProvider):
    def __init__(self, router: SpanRouter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._router = router

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _SwitchTracer(self._router, super().get_tracer(*args, **kwargs))


class SpanRouter:
    """The global provider's switchboard. One per process, from ``install_router()``."""

    def __init__(self, resource: Resource) -> None:
        self._lock = threading.Lock()
        self._current: SpanSink | None = None
        self.provider = _RoutingProvider(self, resource=resource, id_generator=_RoutingIds(self))
        self.provider.add_span_processor(_RoutingProcessor(self))

    @property
    def current(self) -> SpanSink | None:
        return self._current

    @contextmanager
    def attach(self, sink: SpanSink) -> Iterator[SpanSink]:
        """Route spans to ``sink`` inside the block. Runs attach one at a time."""
        with self._lock:
            if self._current is not None:
                raise HarnessDefect("another run's span sink is attached")
            self._current = sink
        try:
            yield sink
        finally:
            with self._lock:
                self._current = None


_router: SpanRouter | None = None


def _routed_time_ns() -> int:
    sink = _router._current if _router is not None else None
    if sink is not None and sink.time_ns is not None:
        return sink.time_ns()
    return time.time_ns()


def install_router(service_name: str = SERVICE_RUNTIME) -> SpanRouter:
    """Install (once) and return the global routing tracer provider."""
    global _router
    if _router is None:
        router = SpanRouter(Resource.create({SERVICE_NAME: service_name}))
        current = trace.get_tracer_provider()
        if not isinstance(current, trace.ProxyTracerProvider):
            raise ConfigError(
                "a global tracer provider is already set; the harness must install its own"
            )
        replace_span_clock(_routed_time_ns)
        trace.set_tracer_provider(router.provider)
        _router = router
    return _router
