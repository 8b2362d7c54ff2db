"""Fixtures shared by the integration tests: real OTLP receivers on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration import _otlp


@pytest.fixture
def grpc_receiver() -> Iterator[tuple[str, _otlp.Received]]:
    with _otlp.grpc_receiver() as receiver:
        yield receiver


@pytest.fixture
def http_receiver(request: pytest.FixtureRequest) -> Iterator[tuple[str, _otlp.Received]]:
    with _otlp.http_receiver(getattr(request, "param", 200)) as receiver:
        yield receiver
