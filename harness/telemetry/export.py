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
import logging
import os
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope as PbScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import SpanFlags
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from harness.errors import ConfigError, ExportError
from harness.telemetry.components import (
    merge_lines,
    regroup_by_service,
)
from harness.telemetry.otlp_json import any_value
from harness.telemetry.sdk_shim import TakesEncodedSpans, grpc_exporter_class, http_exporter_class
from harness.telemetry.semconv import (
    ENV_ENDPOINT,
    ENV_TRACES_ENDPOINT,
)

__all__ = [
    "DEFAULT_PROTOCOL",
    "PROTOCOLS",
    "ExportSettings",
    "Protocol",
    "RunExporter",
    "build_exporter",
    "encode_request",
    "encode_traces_data",
    "export_traces_data",
    "exporter_from_settings",
    "jaeger_link",
    "quiet_exporter_logs",
    "reachable",
    "read_traces_data",
    "readable_spans",
    "resolve_settings",
    "unreachable_error",
]

Protocol = Literal["grpc", "http/protobuf"]
PROTOCOLS: tuple[Protocol, ...] = ("grpc", "http/protobuf")
DEFAULT_PROTOCOL: Protocol = "http/protobuf"
DEFAULT_PORTS: dict[Protocol, int] = {"grpc": 4317, "http/protobuf": 4318}
_TRACES_PATH = "/v1/traces"

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
    """The SDK's OTLP span exporter for ``settings`` (imported only when asked for), able to
    send the spans ``RunExporter`` and ``export_traces_data`` encode in one pass."""
    if settings.protocol == "grpc":
        return grpc_exporter_class(_request_of)(endpoint=settings.endpoint, timeout=timeout)
    return http_exporter_class(_request_of)(endpoint=settings.endpoint, timeout=timeout)


def reachable(settings: ExportSettings, *, timeout: float = 2.0) -> str | None:
    """``None`` when a collector accepts connections at ``settings.endpoint``, else why not
    (one TCP connect: the SDK would spend seconds retrying before it gives up)."""
    parts = urlsplit(settings.endpoint)
    host = parts.hostname or "localhost"
    port = parts.port or DEFAULT_PORTS[settings.protocol]
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except socket.gaierror:
        return f"cannot resolve {host}"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


def unreachable_error(settings: ExportSettings, why: str) -> ExportError:
    """The one line that says no collector is listening, and what to do."""
    return ExportError(
        f"no OTLP collector at {settings.endpoint} ({why}); start one "
        f"(docker compose up -d starts a collector and Jaeger) or name yours with "
        f"--otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT"
    )


_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.sdk.trace.export",
)


@contextmanager
def quiet_exporter_logs() -> Iterator[None]:
    """Silence the SDK exporters' retry and failure logs inside the block: the harness says
    in one line what was delivered and what was not."""
    loggers = [logging.getLogger(name) for name in _EXPORTER_LOGGERS]
    saved = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, was in zip(loggers, saved, strict=True):
            logger.disabled = was


JAEGER_URL_ENV = "HARNESS_JAEGER_URL"


def jaeger_link(trace_id: str, env: Mapping[str, str] | None = None) -> str:
    """The Jaeger UI's page of a trace (``HARNESS_JAEGER_URL``, default localhost:16686)."""
    env = os.environ if env is None else env
    base = (env.get(JAEGER_URL_ENV) or "http://localhost:16686").rstrip("/")
    return f"{base}/trace/{trace_id}"


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


def _attributes(items: Iterable[Mapping[str, Any]]) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for item in items:
        value = any_value(item.get("value", {}))
        if value is not None:
            out[str(item["key"])] = tuple(value) if isinstance(value, list) else value
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


# -- OTLP JSON -> protobuf, in one pass ------------------------------------------------------
#
# The SDK's path (ReadableSpan, then its encoder) costs several times the encoding itself, so
# each span goes straight from the OTLP JSON dict to a dict of its message's fields, which the
# protobuf runtime serializes in one call; a request is those spans' bytes inside the few
# resource and scope fields around them. The result is byte-equal to the SDK encoder's
# ``encode_spans(readable_spans(...))``: the same attribute values (maps and bytes as JSON
# text), kinds, status (a description on ERROR only), span flags and grouping by equal resource
# and equal scope in first-seen order. ``test_export_fast`` holds the two paths to that.

_PB_KINDS = {0: 1, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5}  # UNSPECIFIED is sent as INTERNAL, as the SDK does
# Every span and link context is local; the SDK says so in each span's and link's flags.
_PB_FLAGS = SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_ERROR = StatusCode.ERROR.value
# The batch processor only asks whether a span is sampled before queueing it.
_SAMPLED = SpanContext(1, 1, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))

_PbDict = dict[str, Any]


def _pb_value(value: Mapping[str, Any]) -> _PbDict | None:
    if "stringValue" in value:
        return {"string_value": str(value["stringValue"])}
    if "boolValue" in value:
        return {"bool_value": bool(value["boolValue"])}
    if "intValue" in value:
        return {"int_value": int(value["intValue"])}
    if "doubleValue" in value:
        return {"double_value": float(value["doubleValue"])}
    if "arrayValue" in value:
        items = (_pb_value(v) for v in value["arrayValue"].get("values", []))
        return {"array_value": {"values": [i for i in items if i is not None]}}
    if "kvlistValue" in value or "bytesValue" in value:
        return {"string_value": json.dumps(value, sort_keys=True)}
    return None


def _pb_attributes(items: Iterable[Mapping[str, Any]]) -> list[_PbDict]:
    # Through a dict, as the SDK's attribute mappings: a repeated key keeps its first place
    # and its last value.
    out: dict[str, _PbDict] = {}
    for item in items:
        value = _pb_value(item.get("value", {}))
        if value is not None:
            out[str(item["key"])] = value
    return [{"key": key, "value": value} for key, value in out.items()]


def _id(hex_id: str, size: int) -> bytes:
    return int(hex_id, 16).to_bytes(size, "big")


def _pb_span(span: Mapping[str, Any]) -> _PbDict:
    trace_id = _id(str(span["traceId"]), 16)
    parent = span.get("parentSpanId")
    status = span.get("status", {})
    code = StatusCode(int(status.get("code", 0))).value
    message = status.get("message") or None
    return {
        "trace_id": trace_id,
        "span_id": _id(str(span["spanId"]), 8),
        "parent_span_id": _id(str(parent), 8) if parent else None,
        "name": str(span.get("name", "")),
        "kind": _PB_KINDS.get(int(span.get("kind", 0)), 1),
        "start_time_unix_nano": int(span.get("startTimeUnixNano", 0)),
        "end_time_unix_nano": int(span.get("endTimeUnixNano", 0)),
        "attributes": _pb_attributes(span.get("attributes", [])),
        "events": [
            {
                "name": str(e.get("name", "")),
                "time_unix_nano": int(e.get("timeUnixNano", 0)),
                "attributes": _pb_attributes(e.get("attributes", [])),
            }
            for e in span.get("events", [])
        ],
        "links": [
            {
                "trace_id": _id(str(link["traceId"]), 16),
                "span_id": _id(str(link["spanId"]), 8),
                "attributes": _pb_attributes(link.get("attributes", [])),
                "flags": _PB_FLAGS,
            }
            for link in span.get("links", [])
        ],
        "status": {"code": code, "message": message if code == _ERROR else None},
        "flags": _PB_FLAGS,
    }


class _EncodedSpan:
    """One span ready for a request: its serialized ``Span``, its resource's and its scope's
    (each with the key the SDK groups by). Queued in a ``BatchSpanProcessor`` in place of a
    ``ReadableSpan`` and sent by the exporters ``build_exporter`` makes. Bytes, not messages
    or dicts: a queue of them adds almost nothing for the garbage collector to walk."""

    __slots__ = ("resource", "resource_key", "scope", "scope_key", "span")
    context = _SAMPLED

    def __init__(
        self, resource: tuple[str, bytes], scope: tuple[str, bytes], span: _PbDict
    ) -> None:
        self.resource_key, self.resource = resource
        self.scope_key, self.scope = scope
        self.span = PbSpan(**span).SerializeToString()


def _regrouped(traces_data: Mapping[str, Any]) -> dict[str, Any]:
    """``regroup_by_service`` without copying the spans: they are only read here."""
    return regroup_by_service(dict(traces_data), copy_spans=False)


def _map_key(attributes: list[_PbDict]) -> str:
    """Equal for attribute lists that are equal as maps."""
    return repr(sorted((a["key"], repr(a["value"])) for a in attributes))


def _encoded_spans(traces_data: Mapping[str, Any], *, regroup: bool) -> list[_EncodedSpan]:
    data = _regrouped(traces_data) if regroup else traces_data
    out: list[_EncodedSpan] = []
    for resource_spans in data.get("resourceSpans", []):
        attributes = _pb_attributes(resource_spans.get("resource", {}).get("attributes", []))
        resource_pb: _PbDict = {"attributes": attributes}
        # The SDK groups spans by equal resources (attribute maps), in first-seen order ...
        resource = (_map_key(attributes), PbResource(**resource_pb).SerializeToString())
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope_json = scope_spans.get("scope", {})
            name = str(scope_json.get("name", ""))
            version = str(scope_json.get("version") or "")
            scope_attributes = _pb_attributes(scope_json.get("attributes", []))
            scope_pb: _PbDict = {"name": name, "version": version, "attributes": scope_attributes}
            # ... then by equal scopes (name, version, attribute map).
            key = repr((name, version, _map_key(scope_attributes)))
            scope = (key, PbScope(**scope_pb).SerializeToString())
            out.extend(
                _EncodedSpan(resource, scope, _pb_span(span))
                for span in scope_spans.get("spans", [])
            )
    return out


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited protobuf field: its tag, the payload's length (a varint), the payload."""
    size = len(payload)
    length = bytearray()
    while size > 0x7F:
        length.append(size & 0x7F | 0x80)
        size >>= 7
    length.append(size)
    return tag + length + payload


# Field 1 of ExportTraceServiceRequest, ResourceSpans and ScopeSpans (resource_spans, resource,
# scope), field 2 of the last two (scope_spans, spans): all messages, so length-delimited.
_FIELD_1, _FIELD_2 = b"\x0a", b"\x12"


def _request_bytes(spans: Iterable[_EncodedSpan]) -> bytes:
    """A serialized ``ExportTraceServiceRequest`` of ``spans``, grouped by resource then scope
    in first-seen order; fields in number order, as the protobuf runtime writes them."""
    resources: dict[str, tuple[bytes, dict[str, tuple[bytes, list[bytes]]]]] = {}
    for span in spans:
        if span.resource_key not in resources:
            resources[span.resource_key] = (span.resource, {})
        scopes = resources[span.resource_key][1]
        if span.scope_key not in scopes:
            scopes[span.scope_key] = (span.scope, [])
        scopes[span.scope_key][1].append(_field(_FIELD_2, span.span))
    return b"".join(
        _field(
            _FIELD_1,
            _field(_FIELD_1, resource)
            + b"".join(
                _field(_FIELD_2, _field(_FIELD_1, scope) + b"".join(encoded))
                for scope, encoded in scopes.values()
            ),
        )
        for resource, scopes in resources.values()
    )


def _encoded(spans: Sequence[object]) -> Sequence[_EncodedSpan] | None:
    """``spans`` when they are encoded spans (from ``RunExporter``/``export_traces_data``)."""
    return (
        cast(Sequence[_EncodedSpan], spans)
        if spans and isinstance(spans[0], _EncodedSpan)
        else None
    )


def encode_request(traces_data: Mapping[str, Any], *, regroup: bool = True) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` an exporter sends for an OTLP JSON
    ``TracesData`` dict (one resource per component unless ``regroup`` is false)."""
    return _request_bytes(_encoded_spans(traces_data, regroup=regroup))


def encode_traces_data(
    traces_data: Mapping[str, Any], *, regroup: bool = True
) -> ExportTraceServiceRequest:
    """``encode_request`` as a message."""
    return ExportTraceServiceRequest.FromString(encode_request(traces_data, regroup=regroup))


# -- exporters that send encoded spans -------------------------------------------------------


def _request_of(spans: Sequence[object]) -> bytes | None:
    """The request bytes of encoded spans; ``None`` for the SDK's spans."""
    encoded = _encoded(spans)
    return None if encoded is None else _request_bytes(encoded)


def _spans_for(
    exporter: SpanExporter, traces_data: Mapping[str, Any], *, regroup: bool
) -> Sequence[ReadableSpan]:
    """What ``exporter.export`` takes for a run: encoded spans for the exporters made here,
    SDK spans for any other."""
    if isinstance(exporter, TakesEncodedSpans):
        # Queued and exported in place of ReadableSpans; only these exporters read them.
        return cast(Sequence[ReadableSpan], _encoded_spans(traces_data, regroup=regroup))
    return readable_spans(regroup_by_service(dict(traces_data)) if regroup else traces_data)


def export_traces_data(
    traces_data: Mapping[str, Any], exporter: SpanExporter, *, regroup: bool = True
) -> int:
    """Send a run's OTLP JSON through ``exporter``, one resource per component; return the
    number of spans sent. Raises ``ExportError`` when the collector does not take them."""
    spans = _spans_for(exporter, traces_data, regroup=regroup)
    if not spans:
        return 0
    result = exporter.export(spans)
    if result is not SpanExportResult.SUCCESS:
        raise ExportError(f"the collector did not accept the {len(spans)} spans")
    return len(spans)


class RunExporter:
    """Sends finished runs' traces from a background thread, batched across runs (the SDK's
    ``BatchSpanProcessor``), so exporting adds little to each run's wall time.

    ``submit(trace)`` queues a run's spans (one resource per component), moved in time to end
    now (``shift``, see ``timeshift``) so Jaeger's default search finds them; ``close()`` sends
    what is queued (waiting at most ``timeout_millis``) and shuts the exporter down. A
    collector that refuses spans is counted in ``refused``, not raised (the SDK's retry logs
    are silenced meanwhile): use ``export_traces_data`` when the caller must know at once.
    """

    def __init__(self, exporter: SpanExporter, *, shift: bool = True) -> None:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self._shift = shift
        self._tally = _Tally(exporter)
        self._quiet = quiet_exporter_logs()
        self._quiet.__enter__()
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
        """Queue a run's OTLP JSON (moved to end now unless made with ``shift=False``);
        returns the number of spans queued."""
        if self._shift:
            import time

            from harness.telemetry.timeshift import shift_to_now

            traces_data = shift_to_now(traces_data, time.time_ns())
        spans = _spans_for(self._tally.inner, traces_data, regroup=True)
        for span in spans:
            self._processor.on_end(span)
        return len(spans)

    def close(self, timeout_millis: int = 30_000) -> bool:
        """Send everything queued and shut down; ``False`` when it did not finish in time."""
        try:
            flushed = self._processor.force_flush(timeout_millis)
            self._processor.shutdown()
        finally:
            self._quiet.__exit__(None, None, None)
        return flushed


class _Tally(SpanExporter):
    """Counts what the wrapped exporter delivered, for the end-of-run report."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.sent = 0
        self.refused = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            self.sent += len(spans)
        else:
            self.refused += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def read_traces_data(target: str | Path) -> dict[str, Any]:
    """One ``TracesData`` dict from a run directory or a ``trace.jsonl`` (all its lines)."""
    from harness.telemetry.otlp_json import read_trace_file

    path = Path(target)
    if path.is_dir():
        path = path / "trace.jsonl"
    from harness._files import ARTEFACT_LIMIT, read_text

    read_trace_file(path)  # validates every line (ConfigError naming file and line)
    text = read_text(path, what="trace", limit=ARTEFACT_LIMIT)
    lines = [json.loads(line) for line in text.splitlines() if line]
    return merge_lines(lines)
