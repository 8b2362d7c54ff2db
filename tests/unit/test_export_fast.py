"""The one-pass encoder (OTLP JSON -> ExportTraceServiceRequest) sends exactly what the SDK's
path (``readable_spans`` then the SDK's encoder) sends, and the exporters ``build_exporter``
makes put its request on the wire unchanged."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness.errors import ExportError
from harness.scenarios import resolve, run_scenario
from harness.telemetry.components import regroup_by_service
from harness.telemetry.export import (
    ExportSettings,
    RunExporter,
    build_exporter,
    encode_traces_data,
    export_traces_data,
    readable_spans,
)

FOUNDING = ["cascade", "orphaned_tool_block", "scope_leak"]
TRACE = "0af7651916cd43dd8448eb211c80319c"


def _sdk_request(traces_data: dict[str, Any], *, regroup: bool = True) -> ExportTraceServiceRequest:
    data = regroup_by_service(copy.deepcopy(traces_data)) if regroup else traces_data
    return encode_spans(readable_spans(data))


def _run(name: str, policy: str = "buggy") -> dict[str, Any]:
    scenario, _ = resolve(name)
    trace: dict[str, Any] = run_scenario(scenario, policy=policy, seed=4).trace  # type: ignore[arg-type]
    return trace


def _one_resource(traces_data: dict[str, Any]) -> dict[str, Any]:
    """A run's trace as the routing provider records it: every span on ``harness-runtime``."""
    first = traces_data["resourceSpans"][0]
    scopes = [s for rs in traces_data["resourceSpans"] for s in rs["scopeSpans"]]
    return {"resourceSpans": [{"resource": first["resource"], "scopeSpans": scopes}]}


def _kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def _span(span_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "name": f"span {span_id}",
        "kind": 1,
        "startTimeUnixNano": "1000",
        "endTimeUnixNano": "2000",
        **extra,
    }


def _every_kind_of_field() -> dict[str, Any]:
    array = {"values": [{"stringValue": "a"}, {"stringValue": "b"}, {}]}
    attributes = [
        _kv("s", {"stringValue": "text é"}),
        _kv("b", {"boolValue": False}),
        _kv("i", {"intValue": "-9007199254740993"}),
        _kv("d", {"doubleValue": 0.25}),
        _kv("whole", {"doubleValue": 3}),
        _kv("arr", {"arrayValue": array}),
        _kv("ints", {"arrayValue": {"values": [{"intValue": "1"}, {"intValue": "2"}]}}),
        _kv("empty", {"arrayValue": {}}),
        _kv("map", {"kvlistValue": {"values": [_kv("k", {"stringValue": "v"})]}}),
        _kv("raw", {"bytesValue": "AAE="}),
        _kv("nothing", {}),
        _kv("s", {"stringValue": "repeated key: last value, first place"}),
    ]
    resource = {"attributes": [_kv("service.name", {"stringValue": "harness-runtime"})]}
    spans = [
        _span("00f067aa0ba902b7", attributes=attributes, kind=0),
        _span(
            "00f067aa0ba902b8",
            parentSpanId="00f067aa0ba902b7",
            kind=2,
            events=[
                {"name": "exception", "timeUnixNano": "1500", "attributes": attributes[:3]},
                {"name": "bare", "timeUnixNano": "1600"},
            ],
            links=[{"traceId": TRACE, "spanId": "00f067aa0ba902b7", "attributes": attributes[2:4]}],
            status={"code": 2, "message": "it broke"},
        ),
        _span("00f067aa0ba902b9", kind=5, status={"code": 1, "message": "dropped on OK"}),
        _span("00f067aa0ba902ba", kind=4, parentSpanId=""),
        _span("00f067aa0ba902bb", kind=3),
    ]
    scope = {"name": "harness.runtime", "version": "1.0", "attributes": attributes[:1]}
    return {
        "resourceSpans": [
            {"resource": resource, "scopeSpans": [{"scope": scope, "spans": spans[:2]}]},
            # An equal resource and scope (name, version) later on: the SDK merges them.
            {
                "resource": copy.deepcopy(resource),
                "scopeSpans": [
                    {"scope": {"name": "other"}, "spans": spans[2:3]},
                    {"scope": copy.deepcopy(scope), "spans": spans[3:4]},
                    # Scopes that differ in their attributes only stay apart.
                    {"scope": {**scope, "attributes": []}, "spans": spans[4:]},
                ],
            },
        ]
    }


@pytest.mark.parametrize("name", FOUNDING)
def test_a_founding_run_encodes_byte_for_byte_as_the_sdk_path(name: str) -> None:
    trace = _run(name)
    fast = encode_traces_data(trace)
    assert fast == _sdk_request(trace)
    assert fast.SerializeToString() == _sdk_request(trace).SerializeToString()
    services = [
        a.value.string_value
        for rs in fast.resource_spans
        for a in rs.resource.attributes
        if a.key == "service.name"
    ]
    assert services[0] == "harness-runtime"
    assert len(services) == len(set(services)) >= 3


@pytest.mark.parametrize("name", FOUNDING)
def test_spans_on_one_resource_are_regrouped_as_regroup_by_service_does(name: str) -> None:
    raw = _one_resource(_run(name, policy="fixed"))
    assert encode_traces_data(raw) == _sdk_request(raw)
    assert encode_traces_data(raw, regroup=False) == _sdk_request(raw, regroup=False)
    assert len(encode_traces_data(raw, regroup=False).resource_spans) == 1


def test_every_kind_of_field_encodes_as_the_sdk_path() -> None:
    data = _every_kind_of_field()
    for regroup in (True, False):
        fast = encode_traces_data(data, regroup=regroup)
        assert fast == _sdk_request(data, regroup=regroup)
    fast = encode_traces_data(data, regroup=False)
    assert len(fast.resource_spans) == 1  # equal resources merge
    scopes = [(s.scope.name, len(s.spans)) for s in fast.resource_spans[0].scope_spans]
    assert scopes == [("harness.runtime", 3), ("other", 1), ("harness.runtime", 1)]
    first = fast.resource_spans[0].scope_spans[0].spans[0]
    assert first.attributes[0].value.string_value == "repeated key: last value, first place"
    assert first.kind == 1  # UNSPECIFIED goes out as INTERNAL


def test_a_different_value_gives_a_different_request() -> None:
    data = _every_kind_of_field()
    changed = copy.deepcopy(data)
    changed["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"][3] = _kv(
        "d", {"doubleValue": 0.5}
    )
    assert encode_traces_data(changed) != _sdk_request(data)


class _Captured:
    """Stands in for the SDK HTTP exporter's client: keeps the bytes it is given."""

    def __init__(self, *, ok: bool) -> None:
        self.bodies: list[bytes] = []
        self._ok = ok

    def export(self, data: bytes) -> Any:
        self.bodies.append(data)
        return type(
            "Result",
            (),
            {"success": self._ok, "error": None, "status_code": 200 if self._ok else 400},
        )()

    def shutdown(self) -> None:
        pass


def _http(ok: bool = True) -> tuple[Http, _Captured]:
    exporter = build_exporter(ExportSettings("http://127.0.0.1:1/v1/traces", "http/protobuf"))
    assert isinstance(exporter, Http)
    exporter._client.shutdown()
    captured = _Captured(ok=ok)
    exporter._client = captured  # type: ignore[assignment]
    return exporter, captured


def test_the_http_exporter_posts_the_sdk_paths_request() -> None:
    trace = _run("cascade")
    exporter, captured = _http()
    assert export_traces_data(trace, exporter) == len(readable_spans(trace))
    (body,) = captured.bodies
    assert ExportTraceServiceRequest.FromString(body) == _sdk_request(trace)
    # SDK spans from a span processor still go through the SDK's encoder.
    spans = readable_spans(trace)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert captured.bodies[1] == encode_spans(spans).SerializePartialToString()
    exporter.shutdown()


def test_a_refusal_through_the_fast_path_is_an_export_error() -> None:
    exporter, captured = _http(ok=False)
    with pytest.raises(ExportError, match="did not accept"):
        export_traces_data(_run("scope_leak"), exporter)
    assert len(captured.bodies) == 1
    exporter.shutdown()


def test_the_grpc_exporter_gives_the_stub_the_sdk_paths_request() -> None:
    trace = _run("orphaned_tool_block")
    exporter = build_exporter(ExportSettings("http://127.0.0.1:1", "grpc"))
    assert isinstance(exporter, Grpc)
    sent: list[ExportTraceServiceRequest] = []

    class Stub:
        def Export(self, request: ExportTraceServiceRequest, **kwargs: object) -> None:
            sent.append(request)

    exporter._client = Stub()
    assert export_traces_data(trace, exporter) > 10
    assert sent == [_sdk_request(trace)]
    exporter.shutdown()


def test_run_exporter_batches_runs_as_the_sdk_path_would() -> None:
    traces = [_run("cascade"), _run("scope_leak", policy="fixed")]
    exporter, captured = _http()
    runner = RunExporter(exporter, shift=False)  # the recorded times, to compare byte for byte
    queued = [runner.submit(trace) for trace in traces]
    assert runner.close(timeout_millis=10_000)
    assert (runner.sent, runner.refused) == (sum(queued), 0)
    got = [ExportTraceServiceRequest.FromString(body) for body in captured.bodies]
    expected = encode_spans(
        [span for trace in traces for span in readable_spans(regroup_by_service(trace))]
    )
    assert len(got) == 1  # under one batch (512 spans)
    assert got[0] == expected


class _Recording(SpanExporter):
    def __init__(self) -> None:
        self.batches: list[Sequence[ReadableSpan]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(spans)
        return SpanExportResult.SUCCESS


def test_other_exporters_still_get_sdk_spans() -> None:
    trace = _run("scope_leak")
    memory = InMemorySpanExporter()
    assert export_traces_data(trace, memory) == len(memory.get_finished_spans())
    assert all(isinstance(s, ReadableSpan) for s in memory.get_finished_spans())
    recording = _Recording()
    runner = RunExporter(recording, shift=False)
    queued = runner.submit(trace)
    assert runner.close(timeout_millis=10_000)
    assert runner.sent == queued == sum(len(b) for b in recording.batches)
    assert encode_spans([s for b in recording.batches for s in b]) == _sdk_request(trace)
