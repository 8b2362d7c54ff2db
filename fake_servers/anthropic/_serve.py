"""Serve an ASGI app on loopback with uvicorn inside the caller's task group.

The listening socket is bound and put in listen state before uvicorn starts, so the port is
known at once and early clients wait in the kernel backlog (no sleep-and-poll). Shutdown is
bounded: uvicorn gets a graceful window, then its task is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from fake_servers.anthropic._responses import ConnectionRegistry
from harness.errors import ConfigError, ServerError

__all__ = ["check_loopback", "serve_app"]

_GRACEFUL_SECONDS = 2
_STOP_SECONDS = 5.0


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


def _protocol_class(connections: ConnectionRegistry) -> type[asyncio.Protocol]:
    class TrackedH11Protocol(H11Protocol):
        """h11 protocol that records its transport so the app can drop the connection."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            connections[self.client] = transport

        def connection_lost(self, exc: Exception | None) -> None:
            connections.pop(self.client, None)
            super().connection_lost(exc)

    return TrackedH11Protocol


@contextlib.asynccontextmanager
async def serve_app(
    app: ASGIApp, connections: ConnectionRegistry, *, host: str, port: int
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0 = a free port); yields the base URL."""
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
        http=_protocol_class(connections),
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
        if not task.cancelled() and task.exception() is not None:
            raise ServerError("the fake API server failed") from task.exception()
