"""One proxied TCP connection: two toxic links over asyncio streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

import anyio

from harness.chaos_random import ChaosRandom
from harness.clock import Clock
from harness.faults.link import ToxicLink
from harness.faults.toxic_set import ToxicSet

__all__ = ["READ_SIZE", "Connection"]

_log = logging.getLogger(__name__)

# Large reads keep the per-chunk overhead low on bulk transfers.
READ_SIZE = 256 * 1024


class _Source:
    __slots__ = ("_reader",)

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def receive(self) -> bytes:
        try:
            return await self._reader.read(READ_SIZE)
        except OSError:
            return b""


class _Sink:
    __slots__ = ("_writer",)

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def send(self, data: bytes) -> None:
        # write() hands the bytes to the transport at once; only drain() waits.
        self._writer.write(data)
        with contextlib.suppress(OSError):
            await self._writer.drain()

    async def send_eof(self) -> None:
        if self._writer.can_write_eof() and not self._writer.is_closing():
            with contextlib.suppress(OSError):
                self._writer.write_eof()


class Connection:
    """Relays client <-> upstream until both directions end, a toxic closes it, or the proxy
    closes it. ``upstream`` toxics act on client -> server bytes, ``downstream`` on the reply."""

    def __init__(
        self,
        *,
        index: int,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[str, int],
        toxics: ToxicSet,
        clock: Clock,
        rng: ChaosRandom,
        on_event: Callable[..., None],
    ) -> None:
        self.index = index
        self._client_reader, self._client_writer = client
        self._upstream = upstream
        self._toxics = toxics
        self._clock = clock
        self._rng = rng
        self._on_event = on_event
        self._server_writer: asyncio.StreamWriter | None = None
        self._scope: anyio.CancelScope | None = None

    async def run(self) -> None:
        try:
            with anyio.CancelScope() as self._scope:
                try:
                    reader, writer = await asyncio.open_connection(*self._upstream)
                except OSError as exc:
                    _log.info("upstream %s:%s refused: %s", *self._upstream, exc)
                    return
                self._server_writer = writer
                _no_delay(writer)
                _no_delay(self._client_writer)
                await self._relay(reader, writer)
        except Exception:
            _log.exception("proxied connection %d failed", self.index)
        finally:
            with anyio.CancelScope(shield=True):
                await self._close_all()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with anyio.create_task_group() as tg:
            for stream, source, sink in (
                ("upstream", self._client_reader, writer),
                ("downstream", reader, self._client_writer),
            ):
                link = ToxicLink(
                    source=_Source(source),
                    sink=_Sink(sink),
                    toxics=self._toxics,
                    stream=stream,
                    clock=self._clock,
                    rng=self._rng.fork(stream),
                    on_event=self._event_for(stream),
                    reset_connection=self.reset,
                )
                tg.start_soon(self._run_link, link, tg.cancel_scope)

    async def _run_link(self, link: ToxicLink, scope: anyio.CancelScope) -> None:
        if await link.run():
            scope.cancel()

    def _event_for(self, stream: str) -> Callable[..., None]:
        def event(action: str, spec: Any, **details: Any) -> None:
            self._on_event(action, spec, connection=self.index, **details)

        return event

    def close(self) -> None:
        """End the connection (both sockets closed after pending data is handed over)."""
        if self._scope is not None:
            self._scope.cancel()

    def reset(self) -> None:
        """End the connection with a TCP reset on both sides."""
        for writer in (self._client_writer, self._server_writer):
            if writer is not None:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                writer.transport.abort()
        self.close()

    async def _close_all(self) -> None:
        for writer in (self._client_writer, self._server_writer):
            if writer is not None and not writer.is_closing():
                writer.close()
        for writer in (self._client_writer, self._server_writer):
            if writer is not None:
                with anyio.move_on_after(1.0):
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()


def _no_delay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
