"""The one place the OpenTelemetry SDK is wired.

Components take an optional ``TracerProvider`` (API type) and default to the global one; the
CLI and the scenario engine build providers here, one per component resource
(``service.name``), so one trace spans the runtime and every fake server. A process a run
starts (a fake server, the interposer) gets its provider from ``process_tracer_provider``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator

from harness.chaos_random import ChaosRandom
from harness.telemetry.semconv import ENV_ENDPOINT, ENV_TRACES_ENDPOINT, SERVICE_NAME

__all__ = [
    "SeededIdGenerator",
    "build_tracer_provider",
    "process_tracer_provider",
]


class SeededIdGenerator(IdGenerator):
    """Trace and span ids drawn from a ``ChaosRandom``: same seed, same ids."""

    def __init__(self, rng: ChaosRandom) -> None:
        self._rng = rng

    def generate_span_id(self) -> int:
        while True:
            value = self._rng.getrandbits(64)
            if value:
                return value

    def generate_trace_id(self) -> int:
        while True:
            value = self._rng.getrandbits(128)
            if value:
                return value


def build_tracer_provider(
    service_name: str,
    *,
    processors: Sequence[SpanProcessor] = (),
    rng: ChaosRandom | None = None,
    attributes: dict[str, str] | None = None,
) -> TracerProvider:
    """A ``TracerProvider`` whose resource names ``service_name``.

    With ``rng`` the ids are deterministic (sim mode); otherwise the SDK's random ids are used.
    """
    resource = Resource.create({SERVICE_NAME: service_name, **(attributes or {})})
    provider = TracerProvider(
        resource=resource,
        id_generator=SeededIdGenerator(rng) if rng is not None else None,
    )
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def process_tracer_provider(
    service_name: str, spans_path: Path | None, *, collector: bool = True
) -> TracerProvider:
    """The provider of a process a run starts: its spans appended to ``spans_path`` as OTLP
    JSON Lines (written per span, so a killed process loses none) and, with ``collector`` and
    an ``OTEL_EXPORTER_OTLP_*`` endpoint set, batched to that collector."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    processors: list[SpanProcessor] = []
    if spans_path is not None:
        from harness.telemetry.span_file import SpanFileExporter

        processors.append(SimpleSpanProcessor(SpanFileExporter(spans_path)))
    if collector and (os.environ.get(ENV_TRACES_ENDPOINT) or os.environ.get(ENV_ENDPOINT)):
        # Imported only then: protobuf adds to a server's start-up time.
        from harness.telemetry.export import build_exporter, resolve_settings

        settings = resolve_settings(None, None)
        if settings is not None:
            processors.append(BatchSpanProcessor(build_exporter(settings)))
    return build_tracer_provider(service_name, processors=processors)
