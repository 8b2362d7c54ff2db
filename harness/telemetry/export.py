"""Send a run's spans to an OTLP collector (gRPC or HTTP/protobuf).

Settings come from flags first, then the standard variables: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
(used as is), ``OTEL_EXPORTER_OTLP_ENDPOINT`` (a base URL: ``/v1/traces`` is added for HTTP),
``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``. The protocol is always
chosen here, never left to the SDK (which would pick gRPC): ``http/protobuf`` unless told.

A run is exported from its OTLP JSON (the ``trace.jsonl`` content) once it has finished, not
streamed from inside the run: a sim run keeps its virtual timestamps and seeded ids, no exporter
thread runs on the deterministic loop, and every span's component (``service.name``) is known
from the whole trace (see ``components``). The same path pushes a saved run later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from harness.errors import ConfigError, ExportError
from harness.telemetry.components import merge_lines, regroup_by_service

__all__ = [
    "DEFAULT_PROTOCOL",
    "PROTOCOLS",
    "ExportSettings",
    "Protocol",
    "RunExporter",
    "build_exporter",
    "export_traces_data",
    "exporter_from_settings",
    "read_traces_data",
    "readable_spans",
    "resolve_settings",
]

Protocol = Literal["grpc", "http/protobuf"]
PROTOCOLS: tuple[Protocol, ...] = ("grpc", "http/protobuf")
DEFAULT_PROTOCOL: Protocol = "http/protobuf"
DEFAULT_PORTS: dict[Protocol, int] = {"grpc": 4317, "http/protobuf": 4318}
_TRACES_PATH = "/v1/traces"

ENV_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENV_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
ENV_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
ENV_TRACES_PROTOCOL = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """A resolved endpoint (the full URL the exporter is given) and protocol."""

    endpoint: str
    protocol: Protocol


def _protocol(value: str, field: str) -> Protocol:
    if value not in PROTOCOLS:
        raise ConfigError(
            f"unknown OTLP protocol; choose from {', '.join(PROTOCOLS)}", field=field, value=value
        )
    return value


def _normalize(url: str, protocol: Protocol, *, field: str, signal_path: bool) -> str:
    """Check ``url``; give it the protocol's default port and, for HTTP, the traces path."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "an OTLP endpoint is a URL such as http://localhost:4318", field=field, value=url
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigError("the endpoint's port is not a number", field=field, value=url) from None
    netloc = parts.netloc if port is not None else f"{parts.netloc}:{DEFAULT_PORTS[protocol]}"
    path = parts.path
    if protocol == "http/protobuf" and signal_path and path.rstrip("/") == "":
        path = _TRACES_PATH
    elif protocol == "http/protobuf" and signal_path and not path.endswith(_TRACES_PATH):
        path = path.rstrip("/") + _TRACES_PATH
    return urlunsplit((parts.scheme, netloc, path, parts.query, ""))


def resolve_settings(
    endpoint: str | None,
    protocol: str | None,
    env: Mapping[str, str] | None = None,
    *,
    default_endpoint: bool = False,
    flags: tuple[str, str] = ("--endpoint", "--protocol"),
) -> ExportSettings | None:
    """Where and how to export, from flags then ``OTEL_*`` variables; ``None`` means off.

    A flag or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is a base URL (for HTTP ``/v1/traces`` is
    added when missing); ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is used as is. With
    ``default_endpoint`` and nothing set, the local collector (``http://localhost:4318`` or
    ``:4317`` for gRPC) is used. Bad values are ``ConfigError``s naming the flag (``flags``:
    the endpoint's and the protocol's option names) or the variable.
    """
    endpoint_flag, protocol_flag = flags
    env = os.environ if env is None else env
    if protocol:
        chosen = _protocol(protocol, protocol_flag)
    elif env.get(ENV_TRACES_PROTOCOL):
        chosen = _protocol(env[ENV_TRACES_PROTOCOL], ENV_TRACES_PROTOCOL)
    elif env.get(ENV_PROTOCOL):
        chosen = _protocol(env[ENV_PROTOCOL], ENV_PROTOCOL)
    else:
        chosen = DEFAULT_PROTOCOL
    if endpoint:
        url = _normalize(endpoint, chosen, field=endpoint_flag, signal_path=True)
    elif env.get(ENV_TRACES_ENDPOINT):
        url = _normalize(
            env[ENV_TRACES_ENDPOINT], chosen, field=ENV_TRACES_ENDPOINT, signal_path=False
        )
    elif env.get(ENV_ENDPOINT):
        url = _normalize(env[ENV_ENDPOINT], chosen, field=ENV_ENDPOINT, signal_path=True)
    elif default_endpoint:
        url = _normalize("http://localhost", chosen, field=endpoint_flag, signal_path=True)
    else:
        return None
    return ExportSettings(url, chosen)


def build_exporter(settings: ExportSettings, *, timeout: float = 10.0) -> SpanExporter:
    """The SDK's OTLP span exporter for ``settings`` (imported only when asked for)."""
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(endpoint=settings.endpoint, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter(endpoint=settings.endpoint, timeout=timeout)


def exporter_from_settings(
    endpoint: str | None, protocol: str | None, env: Mapping[str, str] | None = None
) -> SpanExporter | None:
    """The OTLP exporter ``harness run --otlp-endpoint/--otlp-protocol`` asks for, or ``None``
    when neither the flags nor the ``OTEL_*`` variables name an endpoint.

    Give it finished runs through ``RunExporter(exporter)`` (batched, in the background) or
    ``export_traces_data(outcome.trace, exporter)`` (at once, raising on failure), and shut
    it down after the last run. Do not put it in a span processor of the routing provider:
    those spans all carry the ``harness-runtime`` resource.
    """
    settings = resolve_settings(
        endpoint, protocol, env, flags=("--otlp-endpoint", "--otlp-protocol")
    )
    return build_exporter(settings) if settings is not None else None


# -- OTLP JSON -> ReadableSpan ---------------------------------------------------------------

# OTLP's SpanKind enum starts with UNSPECIFIED; the API's starts with INTERNAL.
_KINDS = {0: SpanKind.INTERNAL, 1: SpanKind.INTERNAL, 2: SpanKind.SERVER, 3: SpanKind.CLIENT}
_KINDS |= {4: SpanKind.PRODUCER, 5: SpanKind.CONSUMER}


def _value(value: Mapping[str, Any]) -> AttributeValue | None:
    if "stringValue" in value:
        return str(value["stringValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        items = [_value(v) for v in value["arrayValue"].get("values", [])]
        return cast(AttributeValue, tuple(i for i in items if i is not None))
    if "kvlistValue" in value or "bytesValue" in value:
        # SDK attributes cannot hold maps or bytes; keep the content readable.
        return json.dumps(value, sort_keys=True)
    return None


def _attributes(items: Iterable[Mapping[str, Any]]) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for item in items:
        value = _value(item.get("value", {}))
        if value is not None:
            out[str(item["key"])] = value
    return out


def _context(trace_id: str, span_id: str, flags: int = TraceFlags.SAMPLED) -> SpanContext:
    return SpanContext(
        int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=TraceFlags(flags)
    )


def _status(status: Mapping[str, Any]) -> Status:
    code = StatusCode(int(status.get("code", 0)))
    # The SDK accepts a description on ERROR only.
    return Status(code, status.get("message") or None) if code is StatusCode.ERROR else Status(code)


def readable_spans(traces_data: Mapping[str, Any]) -> list[ReadableSpan]:
    """SDK spans equal to an OTLP JSON ``TracesData`` dict's (ids, parents, names, kinds,
    timestamps, attributes, events, links, status, resource and scope), for an exporter."""
    spans: list[ReadableSpan] = []
    for resource_spans in traces_data.get("resourceSpans", []):
        resource = Resource(_attributes(resource_spans.get("resource", {}).get("attributes", [])))
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope_json = scope_spans.get("scope", {})
            scope = InstrumentationScope(
                str(scope_json.get("name", "")),
                scope_json.get("version") or None,
                None,
                _attributes(scope_json.get("attributes", [])) or None,
            )
            for span in scope_spans.get("spans", []):
                trace_id = str(span["traceId"])
                parent = span.get("parentSpanId")
                spans.append(
                    ReadableSpan(
                        name=str(span.get("name", "")),
                        context=_context(trace_id, str(span["spanId"])),
                        parent=_context(trace_id, str(parent)) if parent else None,
                        resource=resource,
                        attributes=_attributes(span.get("attributes", [])),
                        events=[
                            Event(
                                str(e.get("name", "")),
                                _attributes(e.get("attributes", [])),
                                int(e.get("timeUnixNano", 0)),
                            )
                            for e in span.get("events", [])
                        ],
                        links=[
                            Link(
                                _context(str(link["traceId"]), str(link["spanId"])),
                                _attributes(link.get("attributes", [])),
                            )
                            for link in span.get("links", [])
                        ],
                        kind=_KINDS.get(int(span.get("kind", 0)), SpanKind.INTERNAL),
                        status=_status(span.get("status", {})),
                        start_time=int(span.get("startTimeUnixNano", 0)),
                        end_time=int(span.get("endTimeUnixNano", 0)),
                        instrumentation_scope=scope,
                    )
                )
    return spans


def export_traces_data(
    traces_data: Mapping[str, Any], exporter: SpanExporter, *, regroup: bool = True
) -> int:
    """Send a run's OTLP JSON through ``exporter``, one resource per component; return the
    number of spans sent. Raises ``ExportError`` when the collector does not take them."""
    data = regroup_by_service(dict(traces_data)) if regroup else traces_data
    spans = readable_spans(data)
    if not spans:
        return 0
    result = exporter.export(spans)
    if result is not SpanExportResult.SUCCESS:
        raise ExportError(f"the collector did not accept the {len(spans)} spans")
    return len(spans)


class RunExporter:
    """Sends finished runs' traces from a background thread, batched across runs (the SDK's
    ``BatchSpanProcessor``), so exporting adds little to each run's wall time.

    ``submit(trace)`` queues a run's spans (one resource per component); ``close()`` sends
    what is queued (waiting at most ``timeout_millis``) and shuts the exporter down. A
    collector that refuses spans is logged by the SDK, not raised: use ``export_traces_data``
    when the caller must know.
    """

    def __init__(self, exporter: SpanExporter) -> None:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self._tally = _Tally(exporter)
        self._processor: SpanProcessor = BatchSpanProcessor(self._tally)

    @property
    def sent(self) -> int:
        """Spans the collector accepted so far."""
        return self._tally.sent

    @property
    def refused(self) -> int:
        """Spans that did not reach the collector (refused, unreachable, timed out)."""
        return self._tally.refused

    def submit(self, traces_data: Mapping[str, Any]) -> int:
        """Queue a run's OTLP JSON; returns the number of spans queued."""
        spans = readable_spans(regroup_by_service(dict(traces_data)))
        for span in spans:
            self._processor.on_end(span)
        return len(spans)

    def close(self, timeout_millis: int = 30_000) -> bool:
        """Send everything queued and shut down; ``False`` when it did not finish in time."""
        flushed = self._processor.force_flush(timeout_millis)
        self._processor.shutdown()
        return flushed


class _Tally(SpanExporter):
    """Counts what the wrapped exporter delivered, for the end-of-run report."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self.sent = 0
        self.refused = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            self.sent += len(spans)
        else:
            self.refused += len(spans)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


def read_traces_data(target: str | Path) -> dict[str, Any]:
    """One ``TracesData`` dict from a run directory or a ``trace.jsonl`` (all its lines)."""
    from harness.telemetry.otlp_json import read_trace_file

    path = Path(target)
    if path.is_dir():
        path = path / "trace.jsonl"
    read_trace_file(path)  # validates every line (ConfigError naming file and line)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return merge_lines(lines)
