"""One direction of a connection: bytes from a source through a chain of toxics to a sink.

The link is transport-agnostic (TCP sockets, stdio pipes, in-process streams all fit
``ByteSource``/``ByteSink``). With no toxic applying it copies directly (the fast path). When the
target's toxics change, the running chain is interrupted and rebuilt: every chunk read but not yet
written is carried, in order, into the new chain, so live changes never lose or reorder data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import anyio

from harness.chaos_random import ChaosRandom
from harness.clock import Clock
from harness.faults.toxic_set import ToxicEntry, ToxicSet
from harness.faults.toxics import ChunkChannel, StreamChunk, Toxic, ToxicStub

__all__ = ["ByteSink", "ByteSource", "LinkEvent", "QueueSource", "ToxicLink"]


class ByteSource(Protocol):
    async def receive(self) -> bytes:
        """The next bytes; ``b""`` at the end. Cancellation must not lose data."""
        ...


class QueueSource:
    """A ``ByteSource`` over an anyio memory object stream of bytes (closed = the end)."""

    __slots__ = ("_receive",)

    def __init__(self, receive: Any) -> None:
        self._receive = receive

    async def receive(self) -> bytes:
        try:
            data: bytes = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return b""
        return data


class ByteSink(Protocol):
    async def send(self, data: bytes) -> None:
        """Write ``data``; it must be accepted before the first await (cancellation-safe)."""
        ...

    async def send_eof(self) -> None:
        """Signal the end of this direction."""
        ...


# (action, toxic spec, connection-level details) -> recorded by the owner of the link.
LinkEvent = Callable[..., None]


@dataclass(slots=True)
class _ToxicState:
    entry: ToxicEntry
    applies: bool
    rng: ChaosRandom
    memory: dict[str, Any] = field(default_factory=dict)


class ToxicLink:
    """Relays one direction; ``run()`` returns ``True`` when a toxic asked to close the
    connection, ``False`` when the source simply ended (the sink got an EOF)."""

    def __init__(
        self,
        *,
        source: ByteSource,
        sink: ByteSink,
        toxics: ToxicSet,
        stream: str,
        clock: Clock,
        rng: ChaosRandom,
        on_event: LinkEvent,
        reset_connection: Callable[[], None],
    ) -> None:
        self._source = source
        self._sink = sink
        self._toxics = toxics
        self._stream = stream
        self._clock = clock
        self._rng = rng
        self._on_event = on_event
        self._reset_connection = reset_connection
        self._states: dict[int, _ToxicState] = {}
        self._source_done = False
        self._closing = False

    async def run(self) -> bool:
        carry: list[StreamChunk] = []
        while True:
            changed = self._toxics.changed()
            states = [self._state(entry) for entry in self._toxics.chain(self._stream)]
            applied = [state for state in states if state.applies]
            if applied:
                done, carry = await self._run_chain(applied, carry, changed)
            else:
                done = await self._run_direct(carry, changed)
                carry = []
            if done:
                if not self._closing:
                    await self._sink.send_eof()
                return self._closing

    def _state(self, entry: ToxicEntry) -> _ToxicState:
        state = self._states.get(entry.generation)
        if state is None:
            spec = entry.spec
            rng = self._rng.fork(f"{spec.name}#{entry.generation}")
            # Always draw, so the record shows the draw that decided, even at toxicity 1.
            draw = rng.random()
            state = _ToxicState(entry, draw < spec.toxicity, rng)
            self._states[entry.generation] = state
            if state.applies:
                self._on_event("applied", spec, trigger="toxicity", draw=round(draw, 6))
        return state

    async def _run_direct(self, carry: list[StreamChunk], changed: anyio.Event) -> bool:
        for chunk in carry:
            await self._sink.send(chunk.data)
        if self._source_done or self._closing:
            return True
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on, changed, tg.cancel_scope)
            receive, send = self._source.receive, self._sink.send
            while data := await receive():
                await send(data)
            self._source_done = True
            tg.cancel_scope.cancel()
        return self._source_done

    async def _run_chain(
        self, states: list[_ToxicState], carry: list[StreamChunk], changed: anyio.Event
    ) -> tuple[bool, list[StreamChunk]]:
        channels = [ChunkChannel() for _ in range(len(states) + 1)]
        for chunk in carry:
            channels[0].push_nowait(chunk)
        stubs = [
            ToxicStub(
                input=channels[index],
                output=channels[index + 1],
                clock=self._clock,
                rng=state.rng,
                record=partial(self._on_event_details, state.entry.spec),
                close_connection=self._close,
                state=state.memory,
            )
            for index, state in enumerate(states)
        ]
        reading: list[StreamChunk | None] = [None]
        finished = False
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on, changed, tg.cancel_scope)
            if self._source_done or self._closing:
                channels[0].close()
            else:
                tg.start_soon(self._read_into, channels[0], reading)
            for state, stub in zip(states, stubs, strict=True):
                tg.start_soon(_pipe, state.entry.spec.toxic, stub)
            while (out := await channels[-1].get()) is not None:
                await self._sink.send(out.data)
            finished = True
            tg.cancel_scope.cancel()
        if finished:
            return True, []
        # Oldest first: what reached the last channel, then each stage's held chunk and queue.
        leftover = channels[-1].drain()
        for index in reversed(range(len(stubs))):
            held = stubs[index].holding
            if held is not None:
                leftover.append(held)
            leftover.extend(channels[index].drain())
        if reading[0] is not None:
            leftover.append(reading[0])
        return False, leftover

    async def _read_into(self, channel: ChunkChannel, reading: list[StreamChunk | None]) -> None:
        while data := await self._source.receive():
            chunk = StreamChunk(data, self._clock.now())
            reading[0] = chunk
            await channel.put(chunk)
            reading[0] = None
        self._source_done = True
        channel.close()

    def _close(self, reset: bool) -> None:
        if reset:
            self._reset_connection()
        else:
            self._closing = True

    def _on_event_details(self, spec: Any, action: str, **details: Any) -> None:
        self._on_event(action, spec, **details)


async def _pipe(toxic: Toxic, stub: ToxicStub) -> None:
    await toxic.pipe(stub)
    stub.output.close()


async def _cancel_on(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
