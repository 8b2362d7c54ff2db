"""``spans_to_otlp_json`` builds OTLP JSON directly: the same dict, keys in the same order, as
OTel's OTLP encoder followed by protobuf's JSON mapping (which it replaced for speed)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

import harness.scenarios.runner as runner
from harness.scenarios import resolve, run_scenario
from harness.scenarios.registry import BUILTIN_DIR
from harness.telemetry import otlp_json
from harness.telemetry.otlp_json import spans_to_otlp_json


def _as_text(data: dict[str, Any]) -> str:
    return json.dumps(data)  # key order included: the written trace files must not change


def _spans() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    spans: list[ReadableSpan] = []
    for service in ("one", "two"):
        provider = TracerProvider(resource=Resource.create({"service.name": service, "n": 3}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        plain = provider.get_tracer("plain")
        versioned = provider.get_tracer(
            "versioned", "1.2", schema_url="https://example.test/s", attributes={"a": "b"}
        )
        remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_state=TraceState([("k", "v")]))
        with plain.start_as_current_span(
            "root",
            kind=SpanKind.SERVER,
            attributes={
                "s": "x",
                "empty": "",
                "t": True,
                "f": False,
                "i": 0,
                "big": 2**63 - 1,
                "neg": -5,
                "d": 1.0,
                "nan": math.nan,
                "inf": -math.inf,
                "seq": ["a", "b"],
                "ints": (1, 2),
                "none": [],
            },
            links=[Link(remote, {"why": "because"})],
        ) as root:
            root.add_event("ev", {"x": 1.5})
            root.add_event("bare")
            with versioned.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
                child.set_status(Status(StatusCode.ERROR, "went wrong"))
            with plain.start_as_current_span("ok") as ok:
                ok.set_status(Status(StatusCode.OK))
        with plain.start_as_current_span(
            "remote child", context=set_span_in_context(NonRecordingSpan(remote))
        ):
            pass
        for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL):
            plain.start_span("", kind=kind).end()
    spans.extend(exporter.get_finished_spans())
    return spans


def test_every_field_and_value_kind_is_encoded_as_protobuf_does() -> None:
    spans = _spans()
    direct = spans_to_otlp_json(spans)
    assert len(direct["resourceSpans"]) == 2
    assert _as_text(direct) == _as_text(otlp_json._protobuf_otlp_json(spans))


def test_no_spans_is_an_empty_traces_data() -> None:
    assert spans_to_otlp_json([]) == otlp_json._protobuf_otlp_json([]) == {}


def test_a_value_it_does_not_handle_goes_the_protobuf_way(monkeypatch: pytest.MonkeyPatch) -> None:
    spans = _spans()
    calls: list[int] = []
    real = otlp_json._protobuf_otlp_json

    def counted(spans: list[ReadableSpan]) -> dict[str, Any]:
        calls.append(len(spans))
        return real(spans)

    monkeypatch.setattr(otlp_json, "_protobuf_otlp_json", counted)
    huge = spans[0]
    huge._attributes = {**dict(huge.attributes or {}), "huge": 2**64}  # past int64: dropped
    data = spans_to_otlp_json(spans)
    assert calls == [len(spans)]
    assert '"huge"' not in _as_text(data)
    assert '"big"' in _as_text(data)


@pytest.mark.parametrize(
    "name",
    ["cascade", "bugs/scope_kiro_10482.yaml", "bugs/history_pi_8667.yaml", "scope_leak"],
)
def test_a_sim_runs_trace_is_the_protobuf_encoders(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []

    def both(spans: list[ReadableSpan]) -> dict[str, Any]:
        direct = spans_to_otlp_json(spans)
        assert _as_text(direct) == _as_text(otlp_json._protobuf_otlp_json(spans))
        seen.append(len(spans))
        return direct

    monkeypatch.setattr(runner, "spans_to_otlp_json", both)
    target = str(BUILTIN_DIR / name) if name.startswith("bugs/") else name
    scenario, _ = resolve(target)
    for policy in ("buggy", "fixed"):
        run_scenario(scenario, policy=policy)
    assert len(seen) == 2
    assert min(seen) > 0
