"""A fake server as its own process: stdio or streamable HTTP, with the event log and spans
written to files, and a clean exit on stdin EOF (stdio) or SIGTERM / SIGINT."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Literal

import anyio
import anyio.abc
from opentelemetry.sdk.trace import TracerProvider

from fake_servers.mcp._base import FakeServer, build_server, write_process_stderr
from fake_servers.mcp._events import EventLog
from fake_servers.mcp._limits import MAX_SESSIONS, SESSION_IDLE_TIMEOUT
from fake_servers.mcp._script import ServerScript
from fake_servers.mcp._transports import bind_socket, http_server
from harness.chaos_random import ChaosRandom
from harness.clock import ScaledClock
from harness.telemetry.providers import process_tracer_provider
from harness.telemetry.semconv import SERVICE_FAKE_MCP_PREFIX

__all__ = ["run_process"]

_SHUTDOWN_GRACE = 1.0
_FLUSH_MILLIS = 1000


def run_process(
    name: str,
    *,
    script: ServerScript,
    transport: Literal["stdio", "http"],
    host: str,
    port: int,
    seed: int,
    events_path: Path | None,
    spans_path: Path | None,
    chat_fixture: Path | None,
    time_scale: float = 1.0,
    session_idle_timeout: float = SESSION_IDLE_TIMEOUT,
    max_sessions: int = MAX_SESSIONS,
) -> None:
    """Serve fake server ``name`` until stdin EOF (stdio) or SIGTERM / SIGINT.

    ``time_scale`` is the real length of one scripted second (a live run's ``--time-scale``)."""
    provider = process_tracer_provider(f"{SERVICE_FAKE_MCP_PREFIX}{name}", spans_path)
    events = EventLog(sink=events_path)
    fake = build_server(
        name,
        script=script,
        rng=ChaosRandom(seed),
        clock=ScaledClock(time_scale) if time_scale != 1.0 else None,
        events=events,
        chat_fixture=chat_fixture,
        tracer_provider=provider,
        stderr=write_process_stderr,
    )
    fake.crash_mode = "process"
    # Spans already ended reach the collector before a scripted self-kill (bounded wait).
    fake.before_exit = lambda: provider.force_flush(_FLUSH_MILLIS)
    try:
        if transport == "stdio":
            anyio.run(_serve_stdio, fake, provider)
        else:
            anyio.run(_serve_http, fake, host, port, session_idle_timeout, max_sessions)
    finally:
        provider.shutdown()
        events.close()


async def _serve_stdio(fake: FakeServer, provider: TracerProvider) -> None:
    fake.transport = "stdio"
    async with anyio.create_task_group() as tg:
        # Signals are received before the server logs its start (what a caller waits for).
        await tg.start(_exit_on_signal, fake, provider)
        await fake.server.run_stdio_async()
        tg.cancel_scope.cancel()


async def _exit_on_signal(
    fake: FakeServer,
    provider: TracerProvider,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            # Calls in flight end with the process: record them, like a closed stdin does.
            fake.log_abandoned(signal=signal.Signals(signum).name)
            fake.log(
                "stopped",
                time=fake.clock.now(),
                detail={"transport": "stdio", "signal": signal.Signals(signum).name},
            )
            provider.shutdown()
            fake.events.close()
            # The SDK reads stdin in a worker thread that cannot be cancelled; waiting for it
            # could take forever, and every log and span is already flushed.
            os._exit(0)


async def _serve_http(
    fake: FakeServer, host: str, port: int, session_idle_timeout: float, max_sessions: int
) -> None:
    sock = bind_socket(host, port)
    server = http_server(
        fake, host=host, session_idle_timeout=session_idle_timeout, max_sessions=max_sessions
    )
    fake.transport = "http"
    bound_port = sock.getsockname()[1]
    fake.log("started", time=fake.clock.now(), detail={"transport": "http", "port": bound_port})
    stop_signal: list[str] = []
    async with anyio.create_task_group() as tg:

        async def stop_on_signal(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                task_status.started()
                async for signum in signals:
                    stop_signal.append(signal.Signals(signum).name)
                    fake.stop_detail = {"signal": stop_signal[0]}
                    server.should_exit = True
                    # Graceful first; open streams (SSE) get the grace period, then are cut.
                    await anyio.sleep(_SHUTDOWN_GRACE)
                    server.force_exit = True

        # Signals are received before the URL is announced: a client that stops the server
        # as soon as it is up gets the same clean stop.
        await tg.start(stop_on_signal)
        print(f"listening on http://{host}:{bound_port}/mcp", flush=True)
        await server.serve([sock])
        tg.cancel_scope.cancel()
    sock.close()
    # Requests still open when the server stopped (a forced exit leaves them unanswered).
    fake.log_abandoned(**({"signal": stop_signal[0]} if stop_signal else {}))
    fake.log("stopped", time=fake.clock.now(), detail={"transport": "http"})
    sys.stdout.flush()
