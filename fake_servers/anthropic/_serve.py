"""Serve an ASGI app on loopback with uvicorn inside the caller's task group.

The listening socket is bound and put in listen state before uvicorn starts, so the port is
known at once and early clients wait in the kernel backlog (no sleep-and-poll). Shutdown is
bounded: uvicorn gets a graceful window, then its task is cancelled.

Slow or half-open clients cannot starve it (``ConnectionGuard``): a connection that has not sent
its request headers within ``header_timeout`` seconds, or goes ``body_timeout`` seconds without
a byte of an unfinished body, is closed; past ``max_connections`` open connections the oldest
one still waiting for its headers makes room (or the newcomer is closed). Each condition is
logged once, with a count when the server stops, never once per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import resource
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from fake_servers.anthropic._responses import ConnectionRegistry
from harness.errors import ConfigError, ServerError

__all__ = ["ConnectionGuard", "check_loopback", "serve_app"]

_GRACEFUL_SECONDS = 2
_STOP_SECONDS = 5.0
_LOG = logging.getLogger("fake_servers.anthropic")


def _default_max_connections() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Leave descriptors for the process itself (journal, spans, child pipes).
    return max(16, min(512, soft - 128)) if soft > 0 else 512


class ConnectionGuard:
    """Limits and read timeouts of one server's connections, and their once-only log lines."""

    def __init__(
        self,
        *,
        max_connections: int | None = None,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
    ) -> None:
        self.max_connections = max_connections or _default_max_connections()
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.open: dict[Any, None] = {}
        self.counts: dict[str, int] = {}

    def note(self, condition: str, message: str) -> None:
        if condition not in self.counts:
            _LOG.warning("fake-api: %s", message)
        self.counts[condition] = self.counts.get(condition, 0) + 1

    def summary(self) -> None:
        for condition, count in self.counts.items():
            if count > 1:
                _LOG.warning("fake-api: %s: %d connections in all", condition, count)


def check_loopback(host: str) -> None:
    """Refuse any host that is not a loopback address (servers bind loopback only)."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            "the fake API binds loopback only (use 127.0.0.1)", field="--host", value=host
        )


class _Server(uvicorn.Server):
    # The embedding program owns signal handling (the CLI stops the server on SIGINT/SIGTERM).
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _cycle(protocol: Any) -> Any:
    """The request being read or answered; ``None`` until the first headers arrive
    (uvicorn types it as never ``None``)."""
    return getattr(protocol, "cycle", None)


def _protocol_class(
    connections: ConnectionRegistry, guard: ConnectionGuard
) -> type[asyncio.Protocol]:
    class TrackedProtocol(H11Protocol):
        """h11 protocol that records its transport (so the app can drop the connection) and
        enforces the guard's limit and read timeouts."""

        _timer: asyncio.TimerHandle | None = None
        _last_data = 0.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            connections[self.client] = transport
            if len(guard.open) >= guard.max_connections and not self._make_room():
                guard.note(
                    "connection limit",
                    f"{guard.max_connections} connections are open: closing new ones",
                )
                transport.close()
                return
            guard.open[self] = None
            self._last_data = self.loop.time()
            self._timer = self.loop.call_later(guard.header_timeout, self._check_headers)

        def _make_room(self) -> bool:
            for protocol in guard.open:
                if _cycle(protocol) is None:
                    guard.note(
                        "connection limit",
                        f"{guard.max_connections} connections are open: closing the oldest "
                        "that has not sent its request headers",
                    )
                    protocol.transport.close()
                    guard.open.pop(protocol, None)
                    return True
            return False

        def data_received(self, data: bytes) -> None:
            self._last_data = self.loop.time()
            super().data_received(data)

        def _check_headers(self) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            if _cycle(self) is None:
                guard.note(
                    "header timeout",
                    f"closing connections that send no complete request headers within "
                    f"{guard.header_timeout:g} s",
                )
                self.transport.close()
                return
            self._check_body()

        def _check_body(self) -> None:
            self._timer = None
            cycle = _cycle(self)
            if self.transport.is_closing() or cycle is None or not cycle.more_body:
                return
            idle = self.loop.time() - self._last_data
            if idle >= guard.body_timeout:
                guard.note(
                    "body timeout",
                    f"closing connections whose request body stalls for {guard.body_timeout:g} s",
                )
                self.transport.close()
                return
            self._timer = self.loop.call_later(guard.body_timeout - idle, self._check_body)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            guard.open.pop(self, None)
            connections.pop(self.client, None)
            super().connection_lost(exc)

    return TrackedProtocol


@contextlib.asynccontextmanager
async def serve_app(
    app: ASGIApp,
    connections: ConnectionRegistry,
    *,
    host: str,
    port: int,
    guard: ConnectionGuard | None = None,
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0 = a free port); yields the base URL."""
    guard = guard or ConnectionGuard()
    check_loopback(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP, and without it each response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    bound: Any = sock.getsockname()
    shown = f"[{bound[0]}]" if family == socket.AF_INET6 else bound[0]
    config = uvicorn.Config(
        app,
        http=_protocol_class(connections, guard),
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=_GRACEFUL_SECONDS,
    )
    server = _Server(config)
    # A plain task, not a task group: errors of the caller's block must reach it unwrapped.
    task = asyncio.get_running_loop().create_task(server.serve([sock]))
    try:
        yield f"http://{shown}:{bound[1]}"
    finally:
        server.should_exit = True
        with anyio.CancelScope(shield=True):
            done, _ = await asyncio.wait({task}, timeout=_STOP_SECONDS)
            if not done:
                task.cancel()
                await asyncio.wait({task})
        sock.close()
        guard.summary()
        if not task.cancelled() and task.exception() is not None:
            raise ServerError("the fake API server failed") from task.exception()
