"""The plumbing a toxic sees: chunks, a channel between pipeline stages, and the stub.

A toxic is a pure byte-stream transformer. It reads ``StreamChunk``s from ``stub.input`` and
forwards (possibly delayed, sliced or truncated) data to ``stub.output``; it waits only through
``stub.clock`` and draws only from ``stub.rng``. Nothing here knows about sockets, so the same
toxic runs on a TCP connection, a stdio pipe or an in-process stream.

A toxic may be interrupted at any await (its chain is being rebuilt because a toxic was added,
changed or removed). It never loses data on interruption: the stub tracks the chunk the toxic has
taken but not yet fully forwarded (``holding``) and the link hands it to the next chain.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from harness.chaos_random import ChaosRandom
from harness.clock import Clock

__all__ = ["ChunkChannel", "StreamChunk", "ToxicStub"]


@dataclass(slots=True)
class StreamChunk:
    """Bytes read from the source, stamped with the run time they arrived."""

    data: bytes
    timestamp: float


class ChunkChannel:
    """A bounded single-producer/single-consumer queue of chunks between two pipeline stages.

    ``put`` and ``get`` are cancellation-safe: a cancelled ``put`` did not enqueue, a cancelled
    ``get`` did not dequeue, so interrupting a stage never loses or duplicates a chunk.
    """

    __slots__ = ("_capacity", "_closed", "_items", "_ready", "_space")

    def __init__(self, capacity: int = 16) -> None:
        self._items: deque[StreamChunk] = deque()
        self._capacity = capacity
        self._closed = False
        self._ready: anyio.Event | None = None
        self._space: anyio.Event | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def push_nowait(self, chunk: StreamChunk) -> None:
        """Enqueue ignoring capacity (used to re-feed data carried over from a previous chain)."""
        self._items.append(chunk)
        self._wake_reader()

    async def put(self, chunk: StreamChunk) -> None:
        while len(self._items) >= self._capacity:
            if self._space is None:
                self._space = anyio.Event()
            await self._space.wait()
        self.push_nowait(chunk)

    async def get(self) -> StreamChunk | None:
        """The next chunk, or ``None`` once the channel is closed and empty."""
        await self.wait_readable()
        if not self._items:
            return None
        chunk = self._items.popleft()
        if self._space is not None:
            self._space.set()
            self._space = None
        return chunk

    async def wait_readable(self) -> None:
        """Wait until a chunk is queued or the channel is closed."""
        while not self._items and not self._closed:
            if self._ready is None:
                self._ready = anyio.Event()
            await self._ready.wait()

    def close(self) -> None:
        """No more chunks will be put; the reader sees ``None`` after the queued ones."""
        self._closed = True
        self._wake_reader()

    def drain(self) -> list[StreamChunk]:
        """Remove and return every queued chunk, oldest first."""
        items = list(self._items)
        self._items.clear()
        if self._space is not None:
            self._space.set()
            self._space = None
        return items

    def _wake_reader(self) -> None:
        if self._ready is not None:
            self._ready.set()
            self._ready = None


RecordFn = Callable[..., None]
CloseFn = Callable[[bool], None]


def _no_record(event: str, **attributes: Any) -> None:
    del event, attributes


def _no_close(reset: bool) -> None:
    del reset


@dataclass(slots=True, eq=False)
class ToxicStub:
    """What one toxic sees of one direction of one connection.

    ``state`` survives chain rebuilds for the same toxic on the same connection (for example the
    bytes ``limit_data`` has already let through). ``close_connection(reset)`` ends the whole
    connection: ``reset=True`` at once (the peer sees a reset); ``reset=False`` gracefully, once
    the data already forwarded has been written (the toxic then returns).
    ``record(event, **attrs)`` writes a fault record.
    """

    input: ChunkChannel
    output: ChunkChannel
    clock: Clock
    rng: ChaosRandom
    record: RecordFn = _no_record
    close_connection: CloseFn = _no_close
    state: dict[str, Any] = field(default_factory=dict)
    holding: StreamChunk | None = None

    async def chunks(self) -> AsyncIterator[StreamChunk]:
        """Chunks from the input until it ends; each is held until forwarded or dropped."""
        while True:
            chunk = await self.input.get()
            if chunk is None:
                return
            self.holding = chunk
            yield chunk

    async def forward(self, data: bytes, timestamp: float) -> None:
        """Send ``data`` (a prefix of the held chunk's remaining bytes) to the output."""
        await self.output.put(StreamChunk(data, timestamp))
        held = self.holding
        if held is not None:
            rest = held.data[len(data) :]
            self.holding = StreamChunk(rest, held.timestamp) if rest else None

    def drop(self) -> None:
        """Discard what is held."""
        self.holding = None

    async def sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)
