"""Split a run's spans into one resource per component (``service.name``).

In one process every span goes through the one global routing provider (see ``routing``), so a
sim run's trace has a single resource, ``harness-runtime``. A collector and Jaeger show one
service per component only when each span carries its component's resource, so the spans are
regrouped at export time, from what each span says about itself:

- scope ``harness.faults*``                       -> ``harness-proxy``
- scope ``fake_servers.anthropic*``               -> ``fake-anthropic``
- an MCP SERVER span (scope ``mcp-python-sdk`` or
  ``fake_servers.mcp*``)                          -> ``fake-mcp-NAME``
- everything else (``harness.runtime``, MCP and
  Anthropic CLIENT spans)                         -> ``harness-runtime``

An MCP SERVER span names no server, so NAME comes from the nearest span up its parent chain
that carries ``harness.mcp.server`` (the runtime's ``execute_tool`` or reconnect span that made
the call); a span without such an ancestor (the first ``initialize`` of a connection) takes the
run's only server when there is one, and ``fake-mcp`` otherwise. Spans already on another
resource (a live run's subprocess servers) keep it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.telemetry.semconv import (
    HARNESS_MCP_SERVER,
    SERVICE_FAKE_ANTHROPIC,
    SERVICE_FAKE_MCP_PREFIX,
    SERVICE_NAME,
    SERVICE_PROXY,
    SERVICE_RUNTIME,
)

__all__ = [
    "MCP_SERVER_ATTRIBUTE",
    "UNKNOWN_MCP_SERVICE",
    "merge_lines",
    "merge_span_files",
    "regroup_by_service",
    "service_names",
    "stamp_resources",
]

MCP_SERVER_ATTRIBUTE = HARNESS_MCP_SERVER
UNKNOWN_MCP_SERVICE = SERVICE_FAKE_MCP_PREFIX.rstrip("-")

_SERVER_KIND = 2  # OTLP enum value of SPAN_KIND_SERVER
_MCP_SERVER_SCOPES = ("mcp-python-sdk", "fake_servers.mcp")


def _string_attr(attributes: Iterable[dict[str, Any]], key: str) -> str | None:
    for item in attributes:
        if item.get("key") == key:
            value = item.get("value", {}).get("stringValue")
            return value if isinstance(value, str) else None
    return None


def _set_service(resource: dict[str, Any], service: str) -> dict[str, Any]:
    attributes = [a for a in resource.get("attributes", []) if a.get("key") != SERVICE_NAME]
    return {
        **resource,
        "attributes": [{"key": SERVICE_NAME, "value": {"stringValue": service}}, *attributes],
    }


class _Classifier:
    def __init__(self, traces_data: dict[str, Any]) -> None:
        self._spans: dict[str, dict[str, Any]] = {}
        servers: set[str] = set()
        for resource_spans in traces_data.get("resourceSpans", []):
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    self._spans[span.get("spanId", "")] = span
                    server = _string_attr(span.get("attributes", []), MCP_SERVER_ATTRIBUTE)
                    if server:
                        servers.add(server)
        self._only_server = next(iter(servers)) if len(servers) == 1 else None

    def _mcp_server(self, span: dict[str, Any]) -> str | None:
        seen: set[str] = set()
        node: dict[str, Any] | None = span
        while node is not None and node.get("spanId") not in seen:
            seen.add(node.get("spanId", ""))
            server = _string_attr(node.get("attributes", []), MCP_SERVER_ATTRIBUTE)
            if server:
                return server
            node = self._spans.get(node.get("parentSpanId") or "")
        return self._only_server

    def service(self, span: dict[str, Any], scope: str, resource_service: str) -> str:
        if resource_service not in ("", SERVICE_RUNTIME):
            return resource_service
        if scope.startswith("harness.faults"):
            return SERVICE_PROXY
        if scope.startswith("fake_servers.anthropic"):
            return SERVICE_FAKE_ANTHROPIC
        if int(span.get("kind", 0)) == _SERVER_KIND and scope.startswith(_MCP_SERVER_SCOPES):
            server = self._mcp_server(span)
            return f"{SERVICE_FAKE_MCP_PREFIX}{server}" if server else UNKNOWN_MCP_SERVICE
        return SERVICE_RUNTIME


def merge_lines(lines: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One ``TracesData`` dict holding the ``resourceSpans`` of several (a file's lines)."""
    merged: list[dict[str, Any]] = []
    for data in lines:
        merged.extend(data.get("resourceSpans", []))
    return {"resourceSpans": merged}


def merge_span_files(trace: dict[str, Any], files: list[Path]) -> None:
    """Add the subprocess servers' spans to the run's trace. A server span without a parent
    (a notification carries no trace context) started a trace of its own in the server's
    process: it joins the run's trace, so the run stays one trace."""
    run_trace = next(
        (
            span["traceId"]
            for rs in trace.get("resourceSpans", [])
            for ss in rs.get("scopeSpans", [])
            for span in ss.get("spans", [])
        ),
        None,
    )
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                continue  # a line cut short by a killed server
            for rs in data.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        if run_trace and not span.get("parentSpanId"):
                            span["traceId"] = run_trace
            trace.setdefault("resourceSpans", []).extend(data.get("resourceSpans", []))


def regroup_by_service(traces_data: dict[str, Any], *, copy_spans: bool = True) -> dict[str, Any]:
    """A copy of an OTLP JSON ``TracesData`` dict with one ``resourceSpans`` per component.

    Each component's resource keeps the original resource's attributes (SDK name, version)
    with its own ``service.name``; scopes and spans keep their order. ``harness-runtime`` comes
    first, then the other services by name. Idempotent: regrouping twice changes nothing.
    ``copy_spans=False`` puts the very span dicts of ``traces_data`` in the result instead of
    copies (for a caller that drops ``traces_data`` or only reads them).
    """
    classifier = _Classifier(traces_data)
    # service -> (resource, scope key -> (scope dict, spans))
    groups: dict[str, tuple[dict[str, Any], dict[str, tuple[dict[str, Any], list[Any]]]]] = {}
    for resource_spans in traces_data.get("resourceSpans", []):
        resource = resource_spans.get("resource", {})
        resource_service = _string_attr(resource.get("attributes", []), SERVICE_NAME) or ""
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope = scope_spans.get("scope", {})
            scope_name = str(scope.get("name", ""))
            key = repr(sorted(scope.items()))
            for span in scope_spans.get("spans", []):
                service = classifier.service(span, scope_name, resource_service)
                if service not in groups:
                    groups[service] = (_set_service(copy.deepcopy(resource), service), {})
                scopes = groups[service][1]
                if key not in scopes:
                    scopes[key] = (copy.deepcopy(scope), [])
                scopes[key][1].append(copy.deepcopy(span) if copy_spans else span)
    order = sorted(groups, key=lambda s: (s != SERVICE_RUNTIME, s))
    return {
        "resourceSpans": [
            {
                "resource": groups[service][0],
                "scopeSpans": [
                    {"scope": scope, "spans": spans} for scope, spans in groups[service][1].values()
                ],
            }
            for service in order
        ]
    }


def service_names(traces_data: dict[str, Any]) -> list[str]:
    """The ``service.name`` of each ``resourceSpans``, in order."""
    return [
        _string_attr(rs.get("resource", {}).get("attributes", []), SERVICE_NAME) or ""
        for rs in traces_data.get("resourceSpans", [])
    ]


def _any_value(value: str | int | float | bool) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # OTLP JSON writes 64-bit integers as strings
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": value}


def stamp_resources(
    traces_data: dict[str, Any], attributes: dict[str, str | int | float | bool]
) -> dict[str, Any]:
    """Set ``attributes`` on every resource of ``traces_data`` (in place; returned): what
    identifies the run (scenario, policy, seed, mode, its clock) travels with its trace."""
    for resource_spans in traces_data.get("resourceSpans", []):
        resource = resource_spans.setdefault("resource", {})
        kept = [a for a in resource.get("attributes", []) if a.get("key") not in attributes]
        stamped = [{"key": k, "value": _any_value(v)} for k, v in attributes.items()]
        resource["attributes"] = kept + stamped
    return traces_data
