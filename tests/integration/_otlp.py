"""A real OTLP trace receiver on loopback (gRPC or HTTP/protobuf) for tests: it decodes every
export request as a collector would and keeps the requests and headers."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from harness.telemetry.otlp_json import FlatSpan, flatten, traces_data_to_json

Request = trace_service_pb2.ExportTraceServiceRequest


class Received:
    """Export requests (and their HTTP headers) as they arrived."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.headers: list[dict[str, str]] = []
        self.arrived = threading.Event()

    def add(self, request: Request) -> None:
        self.requests.append(request)
        self.arrived.set()

    def flat(self) -> list[FlatSpan]:
        assert self.arrived.wait(10), "the receiver got no export request"
        spans: list[FlatSpan] = []
        for request in self.requests:
            data = traces_data_to_json(TracesData(resource_spans=request.resource_spans))
            spans.extend(flatten(data))
        spans.sort(key=lambda s: (s["start_ns"], s["span_id"]))
        return spans


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self._received = received

    def Export(self, request: Request, context: object) -> Any:
        self._received.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@contextmanager
def grpc_receiver() -> Iterator[tuple[str, Received]]:
    received = Received()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(received), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.stop(grace=None).wait(5)


def _http_server(received: Received, *, status: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            received.headers.append({k.lower(): v for k, v in self.headers.items()})
            if self.path != "/v1/traces" or status != 200:
                self.send_response(404 if self.path != "/v1/traces" else status)
                self.end_headers()
                return
            request = Request()
            request.ParseFromString(body)
            received.add(request)
            payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@contextmanager
def http_receiver(status: int = 200) -> Iterator[tuple[str, Received]]:
    received = Received()
    server = _http_server(received, status=status)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
