"""Export settings from flags and ``OTEL_*`` variables; OTLP JSON back to SDK spans."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http
from opentelemetry.sdk.trace.export import SpanExporter

from harness.errors import ConfigError
from harness.scenarios import resolve, run_scenario
from harness.telemetry.export import (
    ExportSettings,
    exporter_from_settings,
    readable_spans,
    resolve_settings,
)
from harness.telemetry.otlp_json import flatten, spans_to_otlp_json

PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


@pytest.mark.parametrize(
    ("endpoint", "protocol", "env", "expected"),
    [
        (None, None, {}, None),
        ("http://c", None, {}, ("http://c:4318/v1/traces", "http/protobuf")),
        ("http://c", "grpc", {}, ("http://c:4317", "grpc")),
        ("https://c:9/otlp", None, {}, ("https://c:9/otlp/v1/traces", "http/protobuf")),
        ("http://c:9/v1/traces", None, {}, ("http://c:9/v1/traces", "http/protobuf")),
        (
            None,
            None,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"},
            ("http://c:4318/v1/traces", "http/protobuf"),
        ),
        # The signal's own endpoint is used as is, and wins over the base one.
        (
            None,
            None,
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/custom",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
            },
            ("http://t:1/custom", "http/protobuf"),
        ),
        (
            None,
            None,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            ("http://c:4317", "grpc"),
        ),
        # The traces-specific protocol wins over the general one; a flag wins over both.
        (
            "http://c:1",
            None,
            {
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            ("http://c:1", "grpc"),
        ),
        (
            "http://c:1",
            "http/protobuf",
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            ("http://c:1/v1/traces", "http/protobuf"),
        ),
    ],
)
def test_settings_resolve_flags_then_environment(
    endpoint: str | None,
    protocol: str | None,
    env: dict[str, str],
    expected: tuple[str, str] | None,
) -> None:
    settings = resolve_settings(endpoint, protocol, env)
    if expected is None:
        assert settings is None
    else:
        assert settings == ExportSettings(*expected)  # type: ignore[arg-type]


def test_default_endpoint_is_the_local_collector() -> None:
    assert resolve_settings(None, None, {}, default_endpoint=True) == ExportSettings(
        "http://localhost:4318/v1/traces", "http/protobuf"
    )
    assert resolve_settings(None, "grpc", {}, default_endpoint=True) == ExportSettings(
        "http://localhost:4317", "grpc"
    )


@pytest.mark.parametrize(
    ("endpoint", "protocol", "env", "field", "value"),
    [
        (None, "thrift", {}, "--protocol", "thrift"),
        (None, None, {PROTOCOL: "http/json"}, PROTOCOL, "http/json"),
        ("localhost:4318", None, {}, "--endpoint", "localhost:4318"),
        ("http://c:port", None, {}, "--endpoint", "http://c:port"),
        (None, None, {ENDPOINT: "grpc://c"}, ENDPOINT, "grpc://c"),
    ],
)
def test_bad_settings_name_the_flag_or_variable(
    endpoint: str | None, protocol: str | None, env: dict[str, str], field: str, value: str
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_settings(endpoint, protocol, env)
    assert info.value.field == field
    assert value in str(info.value)


@pytest.mark.parametrize(("protocol", "cls"), [("grpc", Grpc), ("http/protobuf", Http)])
def test_exporter_from_settings_builds_the_protocol_asked_for(
    protocol: str, cls: type[SpanExporter]
) -> None:
    exporter = exporter_from_settings("http://127.0.0.1:1", protocol, env={})
    assert isinstance(exporter, cls)
    exporter.shutdown()
    assert exporter_from_settings(None, None, env={}) is None
    # Errors name harness run's own options.
    with pytest.raises(ConfigError) as info:
        exporter_from_settings("127.0.0.1:4318", None, env={})
    assert info.value.field == "--otlp-endpoint"


def test_readable_spans_round_trip_a_run_exactly() -> None:
    scenario, _ = resolve("orphaned_tool_block")
    trace = run_scenario(scenario, policy="buggy", seed=1).trace
    again = spans_to_otlp_json(readable_spans(trace))
    assert flatten(again) == flatten(trace)
    assert len(flatten(trace)) > 10
