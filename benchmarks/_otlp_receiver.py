"""A minimal OTLP trace receiver on 127.0.0.1 port 0, gRPC or HTTP/protobuf, for benchmarks
(and the tests' receiver, which keeps what arrived).

It decodes every ``ExportTraceServiceRequest`` (as a collector would) and counts the spans;
``wait_for(n)`` blocks until ``n`` spans have arrived. ``otlp_receiver(..., process=True)``
runs it in a child process, as a real collector runs: its decoding then does not take the
measured process's interpreter lock.
"""

from __future__ import annotations

import gzip
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

__all__ = ["Received", "SharedCount", "grpc_server", "http_server", "otlp_receiver"]

_Request = trace_service_pb2.ExportTraceServiceRequest
_RESPONSE = trace_service_pb2.ExportTraceServiceResponse


class Received:
    """Spans received so far (thread-safe)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.spans = 0

    def add(self, request: Any) -> None:
        """Count a decoded ``ExportTraceServiceRequest``."""
        count = sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)
        with self._changed:
            self.spans += count
            self._changed.notify_all()

    def add_headers(self, headers: dict[str, str]) -> None:
        """The headers of an HTTP request (lower-case names); not kept here."""

    def wait_for(self, spans: int, timeout: float) -> bool:
        """Whether ``spans`` spans in all arrived within ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self.spans >= spans, timeout)


class SharedCount:
    """The span count of a receiver in a child process, read through shared memory."""

    def __init__(self, value: Any) -> None:
        self._value = value

    @property
    def spans(self) -> int:
        return int(self._value.value)

    def wait_for(self, spans: int, timeout: float) -> bool:
        """Whether ``spans`` spans in all arrived within ``timeout`` seconds (polled)."""
        deadline = time.monotonic() + timeout
        while self.spans < spans:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.0005)
        return True


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self._received = received

    def Export(self, request: Any, context: object) -> Any:
        self._received.add(request)
        return _RESPONSE()


@contextmanager
def grpc_server(received: Received) -> Iterator[str]:
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
def http_server(received: Received, *, status: int = 200) -> Iterator[str]:
    """A receiver at ``/v1/traces`` that answers ``status`` (anything but 200: without
    reading the request)."""
    payload = _RESPONSE().SerializeToString()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a collector serves it

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            received.add_headers({k.lower(): v for k, v in self.headers.items()})
            if self.path != "/v1/traces" or status != 200:
                self.send_response(404 if self.path != "/v1/traces" else status)
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


class _Counting(Received):
    """``Received`` that also publishes its span count to shared memory."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self._value = value

    def add(self, request: Any) -> None:
        super().add(request)
        self._value.value = self.spans


def _server(protocol: str) -> Callable[[Received], AbstractContextManager[str]]:
    return grpc_server if protocol == "grpc" else http_server


def _serve_in_child(protocol: str, value: Any, conn: Any, stop: Any) -> None:
    with _server(protocol)(_Counting(value)) as url:
        conn.send(url)
        stop.wait()


@contextmanager
def _child(protocol: str) -> Iterator[tuple[str, SharedCount]]:
    context = multiprocessing.get_context("spawn")  # no fork of a process holding gRPC threads
    value = context.Value("q", 0, lock=False)
    parent_end, child_end = context.Pipe(duplex=False)
    stop = context.Event()
    process = context.Process(
        target=_serve_in_child, args=(protocol, value, child_end, stop), daemon=True
    )
    process.start()
    try:
        deadline = time.monotonic() + 30
        while not parent_end.poll(0.05):
            if not process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {protocol} receiver process did not start")
        yield parent_end.recv(), SharedCount(value)
    finally:
        stop.set()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)


@contextmanager
def otlp_receiver(
    protocol: str, *, process: bool = False
) -> Iterator[tuple[str, Received | SharedCount]]:
    """``(base URL, received)`` of a receiver for ``protocol`` ("grpc" or "http/protobuf"),
    in this process or, with ``process``, in a child process."""
    if process:
        with _child(protocol) as served:
            yield served
        return
    received = Received()
    with _server(protocol)(received) as url:
        yield url, received
