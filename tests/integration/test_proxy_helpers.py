"""Shared pieces of the proxy integration tests: a loopback echo server, the embedded proxy
driven through ``toxiproxy-python`` (run in a worker thread: the client is synchronous)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
from toxiproxy import Toxiproxy

from harness.faults.proxy import ToxiproxyServer
from harness.faults.records import FaultRecord

T = TypeVar("T")


@dataclass
class EchoServer:
    address: str
    received: bytearray = field(default_factory=bytearray)
    # Set when a connection to the echo server has ended (its last bytes are in ``received``).
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def echo_server() -> AsyncIterator[EchoServer]:
    """Echoes every byte back; closes every connection on exit."""
    writers: set[asyncio.StreamWriter] = set()
    tasks: set[asyncio.Task[Any]] = set()
    state = EchoServer(address="")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.add(writer)
        try:
            while data := await reader.read(65536):
                state.received.extend(data)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
            writers.discard(writer)
            state.ended.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()
        for writer in list(writers):
            writer.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Api:
    """``toxiproxy-python`` against one server; each call runs in a worker thread."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        self.host, self.port = parts.hostname, parts.port

    async def __call__(self, action: Callable[[Toxiproxy], T]) -> T:
        def run() -> T:
            server = Toxiproxy()
            server.update_api_consumer(self.host, self.port)
            return action(server)

        return await anyio.to_thread.run_sync(run)


@asynccontextmanager
async def proxy_server(**options: Any) -> AsyncIterator[tuple[ToxiproxyServer, Api]]:
    server = ToxiproxyServer(**options)
    async with server as url:
        yield server, Api(url)


async def connect(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, _, port = address.rpartition(":")
    return await asyncio.open_connection(host, int(port))


async def roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    writer.write(data)
    await writer.drain()
    return await reader.readexactly(len(data))


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with suppress(OSError):
        await writer.wait_closed()


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    return await reader.read(-1)


def wait_for_record(server: ToxiproxyServer, kind: str) -> anyio.Event:
    """An event set when the server records a fault of this kind."""
    seen = anyio.Event()

    def check(record: FaultRecord) -> None:
        if record.kind == kind:
            seen.set()

    server.recorder.subscribe(check)
    return seen


def no_other_tasks() -> list[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return [task for task in asyncio.all_tasks() if task is not current and not task.done()]
