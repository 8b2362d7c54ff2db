"""Every use of the OpenTelemetry SDK's private parts, walled in here.

The harness relies on these for speed and for virtual time; none is public API, so each is
tested against the range ``pyproject.toml`` allows (``SUPPORTED``): ``test_sdk_shim`` checks
that the installed SDK and exporters are in it and still have every name used here.

- ``opentelemetry.sdk.trace.time_ns``: the clock spans read their timestamps from; the routing
  provider replaces it, so a sim run's spans carry virtual time.
- The OTLP exporters' ``_translate_data`` (gRPC) and ``export``'s internals (HTTP: ``_client``,
  ``_metrics``, ``_shutdown``, ``_max_request_size``, ``_is_request_too_large``): the exporters
  ``build_exporter`` makes send the harness's own request bytes (encoded in one pass) and
  otherwise behave as the SDK's.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import opentelemetry.sdk.trace as sdk_trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from harness.errors import HarnessDefect

if TYPE_CHECKING:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GrpcSpanExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

__all__ = [
    "SUPPORTED",
    "TakesEncodedSpans",
    "grpc_exporter_class",
    "http_exporter_class",
    "replace_span_clock",
]

# The versions of opentelemetry-sdk and opentelemetry-exporter-otlp this shim is tested
# against: at least the first, below the second (as pyproject.toml pins them).
SUPPORTED = ((1, 45), (2, 0))

# Request bytes for spans the harness encoded; ``None`` for the SDK's own spans.
RequestOf = Callable[[Sequence[ReadableSpan]], bytes | None]


def replace_span_clock(clock: Callable[[], int]) -> None:
    """Make the SDK read span timestamps from ``clock`` (nanoseconds)."""
    if getattr(sdk_trace, "time_ns", None) is not time.time_ns:
        raise HarnessDefect(
            "opentelemetry.sdk.trace no longer reads time through its time_ns global; "
            "virtual span timestamps need updating for this SDK version"
        )
    sdk_trace.time_ns = clock  # type: ignore[attr-defined]


class TakesEncodedSpans:
    """Marks the exporters made here: their ``export`` also takes spans the harness encoded
    (the SDK classes are imported only when one is built)."""


@functools.cache
def grpc_exporter_class(request_of: RequestOf) -> type[GrpcSpanExporter]:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GrpcExporter,
    )

    class RunGrpcExporter(GrpcExporter, TakesEncodedSpans):
        """The SDK's gRPC exporter; spans from ``RunExporter``/``export_traces_data`` are
        already encoded, and the stub is given their request as it is."""

        def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
            request = request_of(data)
            if request is None:
                return super()._translate_data(data)
            return ExportTraceServiceRequest.FromString(request)

    return RunGrpcExporter


@functools.cache
def http_exporter_class(request_of: RequestOf) -> type[HttpSpanExporter]:
    from opentelemetry.exporter.otlp.proto.http._common import (
        RequestPayloadTooLargeError,
        _is_request_too_large,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import _logger as logger
    from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

    class RunHttpExporter(HttpExporter, TakesEncodedSpans):
        """The SDK's HTTP/protobuf exporter; spans from ``RunExporter``/``export_traces_data``
        are already encoded: their request's bytes go through the SDK's client (headers,
        compression, timeout, retries), with the SDK's checks and metrics."""

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            data = request_of(spans)
            if data is None:
                return super().export(spans)
            if self._shutdown:
                logger.warning("Exporter already shutdown, ignoring batch")
                return SpanExportResult.FAILURE
            with self._metrics.export_operation(len(spans)) as result:
                if _is_request_too_large(data, self._max_request_size):
                    logger.warning(
                        "Dropping span batch: serialized size %d bytes exceeds "
                        "max_request_size %d bytes.",
                        len(data),
                        self._max_request_size,
                    )
                    result.error = RequestPayloadTooLargeError(
                        f"Serialized span request size {len(data)} bytes exceeds "
                        f"max_request_size {self._max_request_size} bytes."
                    )
                    return SpanExportResult.FAILURE
                sent = self._client.export(data)
                if not sent.success:
                    result.error = sent.error
                    if sent.status_code is not None:
                        result.error_attrs = {HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                    return SpanExportResult.FAILURE
            return SpanExportResult.SUCCESS

    return RunHttpExporter
