"""Shared test configuration."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

# Imported once for the session: the in-process runs of pytester drop the modules first
# imported inside them, and cryptography's compiled core (under mcp) cannot be imported twice.
import harness.scenarios.runner  # noqa: F401
from harness.chaos_random import ChaosRandom
from harness.telemetry.routing import SpanSink, install_router


@pytest.fixture(autouse=True)
def _quiet_http_logs() -> None:
    # httpx2 logs every request at INFO through the root logger; keep test output readable.
    logging.getLogger("httpx2").setLevel(logging.WARNING)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans of this test, from every tracer in the process (the mcp SDK's included).

    The global provider is the harness's routing provider; the test attaches its own sink with
    seeded ids, so span ids are deterministic and no other test's spans leak in."""
    router = install_router()
    exporter = InMemorySpanExporter()
    with router.attach(SpanSink([SimpleSpanProcessor(exporter)], rng=ChaosRandom(0))):
        yield exporter
