"""``ToxiproxyServer``: the embedded Toxiproxy-compatible server as an async resource."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Generator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import uvicorn
from anyio.abc import TaskGroup
from opentelemetry import trace

from harness.chaos_random import ChaosRandom
from harness.clock import Clock, LoopClock
from harness.errors import ServerError
from harness.faults.proxy._addresses import parse_address
from harness.faults.proxy.api import build_app
from harness.faults.proxy.registry import ProxyRegistry
from harness.faults.records import FaultRecorder

__all__ = ["ToxiproxyServer"]

_SHUTDOWN_SECONDS = 5.0


class _Server(uvicorn.Server):
    # The owner of the process decides about signals (the CLI exits 0 on SIGINT/SIGTERM).
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ToxiproxyServer:
    """The proxy API on ``host:port`` (port 0 picks a free port) plus every proxy it creates.

    ``async with ToxiproxyServer() as api_url:`` serves until the block ends; leaving closes the
    API, every listener and every proxied connection, within a bounded time. ``proxies`` (JSON
    list, as for ``POST /populate``) are created before the API accepts requests.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        rng: ChaosRandom | None = None,
        clock: Clock | None = None,
        recorder: FaultRecorder | None = None,
        events_path: str | Path | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        proxies: Sequence[Any] = (),
    ) -> None:
        self._host, self._port = parse_address(f"{host}:{port}", field="host", listen=True)
        self._rng = rng if rng is not None else ChaosRandom(seed).fork("toxiproxy")
        self._clock = clock or LoopClock()
        self._owns_recorder = recorder is None
        self.recorder = recorder or FaultRecorder(
            events_path=events_path, tracer_provider=tracer_provider, clock=self._clock
        )
        self._initial = list(proxies)
        self._registry: ProxyRegistry | None = None
        self._tg: TaskGroup | None = None
        self._server: _Server | None = None
        self._served: anyio.Event | None = None
        self.url = ""

    @property
    def registry(self) -> ProxyRegistry:
        """The proxies (for in-process callers; remote callers use the HTTP API)."""
        if self._registry is None:
            raise ServerError("the toxiproxy server is not running")
        return self._registry

    async def __aenter__(self) -> str:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise ServerError(
                f"cannot listen on {self._host}:{self._port}: {exc.strerror or exc}"
            ) from None
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            self._registry = ProxyRegistry(
                task_group=tg, clock=self._clock, rng=self._rng, recorder=self.recorder
            )
            if self._initial:
                await self._registry.populate(self._initial)
            config = uvicorn.Config(
                build_app(self._registry),
                lifespan="off",
                log_level=logging.WARNING,
                access_log=False,
                timeout_graceful_shutdown=1,
            )
            self._server = _Server(config)
            self._served = anyio.Event()
            tg.start_soon(self._serve, self._server, sock, self._served)
        except BaseException:
            sock.close()
            await self._shutdown()
            raise
        port = sock.getsockname()[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.url = f"http://{host}:{port}"
        return self.url

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

    async def _shutdown(self) -> None:
        tg, self._tg = self._tg, None
        if tg is None:
            return
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_SHUTDOWN_SECONDS):
                if self._server is not None:
                    self._server.should_exit = True
                if self._registry is not None:
                    await self._registry.close()
                if self._served is not None:
                    await self._served.wait()
        finally:
            # Whatever did not stop in time is cancelled: shutdown is bounded.
            tg.cancel_scope.cancel()
            self._registry = None
            self._server = None
            if self._owns_recorder:
                self.recorder.close()
        # The task group holds only the server's own tasks; an error of the caller's block
        # propagates by itself and is not the task group's to wrap.
        await tg.__aexit__(None, None, None)

    @staticmethod
    async def _serve(server: _Server, sock: socket.socket, served: anyio.Event) -> None:
        try:
            await server.serve([sock])
        finally:
            served.set()
