"""The SDK's private parts the harness uses exist in the installed, supported versions."""

from __future__ import annotations

import importlib
from importlib.metadata import version

import pytest

from harness.telemetry.sdk_shim import SUPPORTED


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


@pytest.mark.parametrize(
    "distribution",
    [
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-grpc",
        "opentelemetry-exporter-otlp-proto-http",
    ],
)
def test_the_installed_sdk_is_in_the_supported_range(distribution: str) -> None:
    low, high = SUPPORTED
    assert low <= _release(version(distribution)) < high


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("opentelemetry.sdk.trace", ["time_ns"]),
        ("opentelemetry.exporter.otlp.proto.http._common", ["_is_request_too_large"]),
        ("opentelemetry.exporter.otlp.proto.http._common", ["RequestPayloadTooLargeError"]),
        ("opentelemetry.exporter.otlp.proto.http.trace_exporter", ["_logger"]),
    ],
)
def test_every_private_module_name_the_shim_uses_exists(module: str, names: list[str]) -> None:
    loaded = importlib.import_module(module)
    assert all(hasattr(loaded, name) for name in names)


def test_the_exporters_have_the_private_members_the_shim_overrides() -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    assert callable(Grpc._translate_data)
    http = Http(endpoint="http://127.0.0.1:9/v1/traces")
    try:
        for name in ("_client", "_metrics", "_shutdown", "_max_request_size"):
            assert hasattr(http, name), name
        assert hasattr(http._client, "export")
        assert hasattr(http._metrics, "export_operation")
    finally:
        http.shutdown()
