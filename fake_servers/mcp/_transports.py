"""Serving a fake server over streamable HTTP in-process, and launching one as a stdio
subprocess."""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import uvicorn
from mcp import StdioServerParameters
from starlette.types import ASGIApp

from fake_servers.mcp._base import FakeServer
from fake_servers.mcp._legacy import legacy_http_app
from fake_servers.mcp._limits import MAX_SESSIONS, SESSION_IDLE_TIMEOUT

__all__ = [
    "abort_connections",
    "bind_socket",
    "http_server",
    "serve_http",
    "stdio_parameters",
]

_SHUTDOWN_GRACE = 2.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: the OS picks one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal capture: the caller owns the signals (in process, the
    host application; as a subprocess, our entry point, so SIGTERM ends with exit code 0)."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


def http_server(
    fake: FakeServer,
    *,
    host: str,
    session_idle_timeout: float = SESSION_IDLE_TIMEOUT,
    max_sessions: int = MAX_SESSIONS,
) -> uvicorn.Server:
    """A uvicorn server for ``fake``'s streamable HTTP app (``/mcp``)."""
    app = fake.server.streamable_http_app(
        host=host, session_idle_timeout=session_idle_timeout, max_sessions=max_sessions
    )
    served: ASGIApp = legacy_http_app(app) if fake.script.sdk == "1.x" else app
    config = uvicorn.Config(
        served, log_level="warning", lifespan="on", timeout_graceful_shutdown=1, access_log=False
    )
    return _Server(config)


def abort_connections(server: uvicorn.Server) -> None:
    """Drop every open connection at once (a reset, as when the process dies) and stop."""
    for connection in list(server.server_state.connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.abort()
    # Not force_exit: uvicorn would then skip the app's lifespan shutdown and leave it dangling.
    server.should_exit = True


@asynccontextmanager
async def serve_http(
    fake: FakeServer, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``fake`` over streamable HTTP in this process; yields its URL
    (``http://HOST:PORT/mcp``, the port actually bound).

    The socket is bound and listening before the URL is yielded, so a client may connect at
    once. A scripted crash aborts every open connection and stops the server, like a dead
    process. Shutdown is bounded: graceful, then forced, then the serving task is cancelled.
    """
    sock = bind_socket(host, port)
    server = http_server(fake, host=host)
    done = anyio.Event()

    async def serve() -> None:
        try:
            await server.serve([sock])
        finally:
            done.set()
            fake.log("stopped", time=fake.clock.now(), detail={"transport": "http"})

    fake.transport = "http"
    fake.on_crash = lambda: abort_connections(server)
    bound_port = sock.getsockname()[1]
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            fake.log("started", time=fake.clock.now(), detail={"transport": "http"})
            try:
                yield f"http://{host}:{bound_port}/mcp"
            finally:
                with anyio.CancelScope(shield=True):
                    server.should_exit = True
                    with anyio.move_on_after(_SHUTDOWN_GRACE):
                        await done.wait()
                    tg.cancel_scope.cancel()
    finally:
        sock.close()
        fake.on_crash = None
        fake.transport = "memory"


def stdio_parameters(
    name: str,
    *,
    script: str | Path | None = None,
    events: str | Path | None = None,
    spans: str | Path | None = None,
    seed: int | None = None,
    chat_fixture: str | Path | None = None,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> StdioServerParameters:
    """``StdioServerParameters`` that launch fake server ``name`` as a subprocess
    (``python -m fake_servers.mcp.NAME ...`` with this interpreter)."""
    args = ["-m", f"fake_servers.mcp.{name}"]
    for flag, value in (
        ("--script", script),
        ("--events", events),
        ("--spans", spans),
        ("--seed", seed),
        ("--chat-fixture", chat_fixture),
    ):
        if value is not None:
            args += [flag, str(value)]
    args += list(extra_args)
    return StdioServerParameters(command=sys.executable, args=args, env=env)
