"""A real OTLP trace receiver on loopback (gRPC or HTTP/protobuf) for tests: the benchmarks'
receiver, keeping every export request and its HTTP headers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from benchmarks import _otlp_receiver as receiver
from harness.telemetry.otlp_json import FlatSpan, flatten, traces_data_to_json

Request = trace_service_pb2.ExportTraceServiceRequest


class Received(receiver.Received):
    """Export requests (and their HTTP headers) as they arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []
        self.headers: list[dict[str, str]] = []
        self.arrived = threading.Event()

    def add(self, request: Request) -> None:
        self.requests.append(request)
        super().add(request)
        self.arrived.set()

    def add_headers(self, headers: dict[str, str]) -> None:
        self.headers.append(headers)

    def flat(self) -> list[FlatSpan]:
        assert self.arrived.wait(10), "the receiver got no export request"
        spans: list[FlatSpan] = []
        for request in self.requests:
            data = traces_data_to_json(TracesData(resource_spans=request.resource_spans))
            spans.extend(flatten(data))
        spans.sort(key=lambda s: (s["start_ns"], s["span_id"]))
        return spans


@contextmanager
def grpc_receiver() -> Iterator[tuple[str, Received]]:
    received = Received()
    with receiver.grpc_server(received) as url:
        yield url, received


@contextmanager
def http_receiver(status: int = 200) -> Iterator[tuple[str, Received]]:
    received = Received()
    with receiver.http_server(received, status=status) as url:
        yield url, received
