"""OTLP JSON files (``trace.jsonl``): write a run's spans, read them back.

A file is JSON Lines, one ``TracesData`` per line, in the protobuf-JSON mapping of OTLP: ids as
hex strings, enums as integers, 64-bit integers as decimal strings, lowerCamelCase keys. Jaeger
loads it through "Search → JSON File"; ``opentelemetry-proto`` parses it. Oracles read spans in a
flat form (``FlatSpan``) so a live run and a saved file are checked the same way.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from harness._files import ARTEFACT_LIMIT, TOO_BIG_HINT, parse_json, read_text
from harness.errors import ConfigError

__all__ = [
    "TOO_BIG_HINT",
    "FlatSpan",
    "any_value",
    "flatten",
    "read_trace_file",
    "scrub_addresses",
    "spans_to_otlp_json",
    "traces_data_to_json",
]

FlatSpan = dict[str, Any]

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node: Any) -> Any:
    """protobuf's JSON mapping writes bytes as base64; OTLP JSON wants hex ids."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str) and value:
                node[key] = base64.b64decode(value).hex()
            else:
                _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)
    return node


_ADDRESS = re.compile(r"(cancel scope |at 0x|object at 0x)[0-9a-f]{6,16}")
_ADDRESS_KEYS = ("exception.stacktrace", "exception.message")


def scrub_addresses(traces_data: dict[str, Any]) -> dict[str, Any]:
    """Replace Python object addresses in exception texts (``cancel scope 7f…``, ``at 0x…``):
    they change on every run and would make two identical sim runs' traces differ."""
    for resource_spans in traces_data.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for event in span.get("events", []):
                    for attr in event.get("attributes", []):
                        value = attr.get("value", {})
                        if attr.get("key") in _ADDRESS_KEYS and "stringValue" in value:
                            value["stringValue"] = _ADDRESS.sub(r"\1…", value["stringValue"])
    return traces_data


def spans_to_otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """One ``TracesData`` object (as a JSON-ready dict) holding ``spans``: what OTel's OTLP
    encoder and protobuf's JSON mapping make of them (the same dict, keys in the same order),
    built directly, which costs a tenth. A span with an attribute the direct build does not
    handle (a mapping, an integer past 64 bits) sends the whole trace the protobuf way."""
    try:
        return _direct_otlp_json(spans)
    except _Unhandled:
        return _protobuf_otlp_json(spans)


def _protobuf_otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    request = encode_spans(spans)
    return traces_data_to_json(TracesData(resource_spans=request.resource_spans))


class _Unhandled(Exception):
    """A value ``_direct_otlp_json`` leaves to the protobuf encoder."""


# OTel's SpanKind (INTERNAL 0 ... CONSUMER 4) as OTLP's (SPAN_KIND_INTERNAL 1 ... 5).
_OTLP_KIND = {kind: kind.value + 1 for kind in SpanKind}
# OTLP SpanFlags: the context's is-remote bit is known (always), and set.
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200
_INT64 = range(-(2**63), 2**63)


def _direct_otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """Spans grouped by resource then instrumentation scope, as ``encode_spans`` groups them,
    in the proto3 JSON mapping: fields in field-number order, defaults left out, 64-bit
    integers as strings, ids as hex (``_hex_ids``)."""
    groups: dict[Any, dict[Any, list[dict[str, Any]]]] = {}
    for span in spans:
        scopes = groups.setdefault(span.resource, {})
        scopes.setdefault(span.instrumentation_scope or None, []).append(_span_json(span))
    resource_spans = []
    for resource, scopes in groups.items():
        scope_spans = []
        for scope, encoded in scopes.items():
            entry: dict[str, Any] = {"scope": _scope_json(scope), "spans": encoded}
            if scope is not None and scope.schema_url:
                entry["schemaUrl"] = scope.schema_url
            scope_spans.append(entry)
        resource_json: dict[str, Any] = {}
        if resource.attributes:
            resource_json["attributes"] = _attributes_json(resource.attributes)
        group: dict[str, Any] = {"resource": resource_json, "scopeSpans": scope_spans}
        if resource.schema_url:
            group["schemaUrl"] = resource.schema_url
        resource_spans.append(group)
    return {"resourceSpans": resource_spans} if resource_spans else {}


def _scope_json(scope: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if scope is None:
        return out
    if scope.name:
        out["name"] = scope.name
    if scope.version:
        out["version"] = scope.version
    if scope.attributes:
        out["attributes"] = _attributes_json(scope.attributes)
    return out


def _flags(context: Any) -> int:
    return _HAS_IS_REMOTE | (_IS_REMOTE if context is not None and context.is_remote else 0)


def _span_json(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    if context is None:
        raise _Unhandled
    out: dict[str, Any] = {
        "traceId": f"{context.trace_id:032x}",
        "spanId": f"{context.span_id:016x}",
    }
    if context.trace_state:
        out["traceState"] = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
    if span.parent:
        out["parentSpanId"] = f"{span.parent.span_id:016x}"
    if span.name:
        out["name"] = span.name
    out["kind"] = _OTLP_KIND[span.kind]
    if span.start_time:
        out["startTimeUnixNano"] = str(span.start_time)
    if span.end_time:
        out["endTimeUnixNano"] = str(span.end_time)
    if span.attributes:
        out["attributes"] = _attributes_json(span.attributes)
    if span.dropped_attributes:
        out["droppedAttributesCount"] = span.dropped_attributes
    if span.events:
        out["events"] = [_event_json(event) for event in span.events]
    if span.dropped_events:
        out["droppedEventsCount"] = span.dropped_events
    if span.links:
        out["links"] = [_link_json(link) for link in span.links]
    if span.dropped_links:
        out["droppedLinksCount"] = span.dropped_links
    status: dict[str, Any] = {}
    if span.status.description:
        status["message"] = span.status.description
    if span.status.status_code.value:
        status["code"] = span.status.status_code.value
    out["status"] = status
    out["flags"] = _flags(span.parent)
    return out


def _event_json(event: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if event.timestamp:
        out["timeUnixNano"] = str(event.timestamp)
    if event.name:
        out["name"] = event.name
    if event.attributes:
        out["attributes"] = _attributes_json(event.attributes)
    if event.dropped_attributes:
        out["droppedAttributesCount"] = event.dropped_attributes
    return out


def _link_json(link: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": f"{link.context.trace_id:032x}",
        "spanId": f"{link.context.span_id:016x}",
    }
    if link.attributes:
        out["attributes"] = _attributes_json(link.attributes)
    if link.dropped_attributes:
        out["droppedAttributesCount"] = link.dropped_attributes
    out["flags"] = _flags(link.context)
    return out


def _attributes_json(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _value_json(value)} for key, value in attributes.items()]


def _value_json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, int):
        if value not in _INT64:
            raise _Unhandled
        return {"intValue": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"doubleValue": "NaN"}
        if math.isinf(value):
            return {"doubleValue": "Infinity" if value > 0 else "-Infinity"}
        return {"doubleValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, (list, tuple)):
        values = [_value_json(item) for item in value]
        return {"arrayValue": {"values": values} if values else {}}
    raise _Unhandled


def traces_data_to_json(data: TracesData) -> dict[str, Any]:
    """A protobuf ``TracesData`` as OTLP JSON (hex ids, integer enums)."""
    as_dict = json_format.MessageToDict(data, use_integers_for_enums=True)
    result: dict[str, Any] = _hex_ids(as_dict)
    return result


def any_value(value: Mapping[str, Any]) -> Any:
    """An OTLP JSON ``AnyValue`` as Python: str, bool, int, float, a list of those; a map or
    bytes (which span attributes cannot hold) as its JSON text; ``None`` when empty."""
    if "stringValue" in value:
        return str(value["stringValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        items = (any_value(v) for v in value["arrayValue"].get("values", []))
        return [item for item in items if item is not None]
    if "kvlistValue" in value or "bytesValue" in value:
        return json.dumps(value, sort_keys=True)
    return None


def _attrs(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: any_value(item.get("value", {})) for item in items}


def flatten(traces_data: dict[str, Any]) -> list[FlatSpan]:
    """Flat spans of one ``TracesData`` dict, ordered by start time then span id."""
    flat: list[FlatSpan] = []
    for resource_spans in traces_data.get("resourceSpans", []):
        resource = _attrs(resource_spans.get("resource", {}).get("attributes", []))
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope = scope_spans.get("scope", {}).get("name", "")
            for span in scope_spans.get("spans", []):
                status = span.get("status", {})
                flat.append(
                    {
                        "trace_id": span.get("traceId", ""),
                        "span_id": span.get("spanId", ""),
                        "parent_id": span.get("parentSpanId") or None,
                        "name": span.get("name", ""),
                        "kind": int(span.get("kind", 0)),
                        "start_ns": int(span.get("startTimeUnixNano", 0)),
                        "end_ns": int(span.get("endTimeUnixNano", 0)),
                        "attributes": _attrs(span.get("attributes", [])),
                        "events": [
                            {
                                "name": e.get("name", ""),
                                "time_ns": int(e.get("timeUnixNano", 0)),
                                "attributes": _attrs(e.get("attributes", [])),
                            }
                            for e in span.get("events", [])
                        ],
                        "status": int(status.get("code", 0)),
                        "status_message": status.get("message", ""),
                        "service": resource.get("service.name", ""),
                        "scope": scope,
                    }
                )
    flat.sort(key=lambda s: (s["start_ns"], s["span_id"]))
    return flat


def read_trace_file(path: str | Path) -> list[FlatSpan]:
    """Flat spans of every line of an OTLP JSON Lines file: a regular UTF-8 file of at most
    ``ARTEFACT_LIMIT`` bytes; anything else, or a bad line, is a ``ConfigError``."""
    path = Path(path)
    spans: list[FlatSpan] = []
    text = read_text(path, what="trace", limit=ARTEFACT_LIMIT, hint=TOO_BIG_HINT)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        data = parse_json(line, path=path, line=number)
        try:
            json_format.ParseDict(_b64_ids(parse_json(line, path=path)), TracesData())
        except (ValueError, TypeError, json_format.ParseError) as exc:
            raise ConfigError(
                f"not an OTLP JSON TracesData line: {exc}", path=path, line=number
            ) from None
        spans.extend(flatten(data))
    spans.sort(key=lambda s: (s["start_ns"], s["span_id"]))
    return spans


def _b64_ids(node: Any) -> Any:
    """Inverse of ``_hex_ids``, so protobuf can validate a file we or others wrote."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str) and value:
                node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            else:
                _b64_ids(value)
    elif isinstance(node, list):
        for item in node:
            _b64_ids(item)
    return node
