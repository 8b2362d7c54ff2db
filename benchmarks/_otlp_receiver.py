"""A minimal OTLP trace receiver on 127.0.0.1 port 0, gRPC or HTTP/protobuf, for benchmarks.

It decodes every ``ExportTraceServiceRequest`` (as a collector would) and counts the spans;
``wait_for(n)`` blocks until ``n`` spans have arrived.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

__all__ = ["Received", "otlp_receiver"]

_Request = trace_service_pb2.ExportTraceServiceRequest
_RESPONSE = trace_service_pb2.ExportTraceServiceResponse


class Received:
    """Spans and requests received so far (thread-safe)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.spans = 0
        self.requests = 0

    def add(self, request: Any) -> None:
        """Count a decoded ``ExportTraceServiceRequest``."""
        count = sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)
        with self._changed:
            self.spans += count
            self.requests += 1
            self._changed.notify_all()

    def wait_for(self, spans: int, timeout: float) -> bool:
        """Whether ``spans`` spans in all arrived within ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self.spans >= spans, timeout)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self._received = received

    def Export(self, request: Any, context: object) -> Any:
        self._received.add(request)
        return _RESPONSE()


@contextmanager
def _grpc(received: Received) -> Iterator[str]:
    import grpc  # type: ignore[import-untyped]

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        _TraceService(received), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait(5)


@contextmanager
def _http(received: Received) -> Iterator[str]:
    payload = _RESPONSE().SerializeToString()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a collector serves it

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path != "/v1/traces":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            request = _Request()
            request.ParseFromString(body)
            received.add(request)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def otlp_receiver(protocol: str) -> Iterator[tuple[str, Received]]:
    """``(base URL, received)`` of a receiver for ``protocol`` ("grpc" or "http/protobuf")."""
    received = Received()
    serve = _grpc if protocol == "grpc" else _http
    with serve(received) as url:
        yield url, received
