"""In-process transport faults: the fault plan applied to an MCP client transport.

``FaultyTransport`` wraps any client ``Transport`` (an async context manager yielding
``(read_stream, write_stream)`` of ``SessionMessage``) and applies the plan's frame faults,
process faults and toxics on the injected clock, so a sim run is deterministic and its waits
cost no wall time:

- frame faults as in the stdio interposer (``FrameEngine``); a corrupt frame or garbage reaches
  the reader as the ``ValueError`` the stdio transport produces for a line that is not JSON;
- ``kill`` closes the connection (the client sees -32000 "Connection closed" on every in-flight
  and later call, as when a stdio server dies); ``freeze`` holds every frame for its duration;
- toxics run on the frames' newline-delimited JSON bytes through the same ``ToxicLink`` as the
  TCP proxy and the interposer (a closing toxic closes the connection).

Untouched client frames are written from the caller's task, so its context variables (trace
context included) reach the server as without the wrapper.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from harness.chaos_random import ChaosRandom
from harness.clock import Clock
from harness.errors import HarnessDefect
from harness.faults.executor import VerdictExecutor
from harness.faults.frame_engine import (
    FrameEngine,
    FrameInfo,
    Inject,
    classify_call,
)
from harness.faults.framing import LineFramer
from harness.faults.link import QueueSource, ToxicLink
from harness.faults.plan import FaultPlan
from harness.faults.records import FaultRecorder
from harness.faults.toxic_set import ToxicSet

__all__ = ["FaultyTransport", "info_from_message", "transport_wrapper"]

Deliver = Callable[[Any], Awaitable[None]]


def transport_wrapper(
    plan: FaultPlan,
    server: str,
    *,
    clock: Clock,
    rng: ChaosRandom,
    recorder: FaultRecorder,
) -> Callable[[Any], FaultyTransport]:
    """A ``ServerSpec.wrap`` function: each connection (numbered from 1) gets its own
    ``FaultyTransport``. Faults and their counts (``nth``, ``count``, ``at``) are per server,
    across reconnects; toxics draw from ``rng.fork("<server>#<n>")`` per connection. With no
    fault for ``server`` the transport is returned unchanged."""
    if not plan.frame_faults() and not plan.toxics(server):
        return _unwrapped
    numbers = itertools.count(1)
    engine = FrameEngine(
        plan.frame_faults(), target=server, rng=rng.fork(server), recorder=recorder
    )

    def wrap(inner: Any) -> FaultyTransport:
        number = next(numbers)
        return FaultyTransport(
            inner,
            plan=plan,
            target=server,
            clock=clock,
            rng=rng.fork(f"{server}#{number}"),
            recorder=recorder,
            connection=number,
            engine=engine.for_connection(number),
        )

    return wrap


def _unwrapped(inner: Any) -> Any:
    # No fault for this server: the transport stays as it is (no relay task, no cost).
    return inner


def info_from_message(message: Any, direction: str) -> FrameInfo:
    """Classify an ``mcp_types`` JSON-RPC message without serializing it."""
    method = getattr(message, "method", None)
    ident = getattr(message, "id", None)
    if isinstance(method, str):
        return classify_call(direction, method, ident, getattr(message, "params", None))
    if hasattr(message, "result") or hasattr(message, "error"):
        return FrameInfo(direction, "response", id=ident)
    return FrameInfo(direction, "invalid")


class FaultyTransport:
    """A client transport with faults; use it where the wrapped transport would be used."""

    def __init__(
        self,
        inner: Any,
        *,
        plan: FaultPlan,
        target: str,
        clock: Clock,
        rng: ChaosRandom,
        recorder: FaultRecorder,
        connection: int | None = None,
        engine: FrameEngine | None = None,
    ) -> None:
        self._inner = inner
        self._target = target
        self._clock = clock
        self._rng = rng
        self._recorder = recorder
        self._connection = connection
        self.engine = engine or FrameEngine(
            plan.frame_faults(), target=target, rng=rng, recorder=recorder, connection=connection
        )
        self._toxics = ToxicSet()
        for spec in plan.toxics(target):
            self._toxics.add(spec)
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self._inner_write: Any = None
        self._to_client: MemoryObjectSendStream[Any] | None = None
        self._up_bytes: MemoryObjectSendStream[bytes] | None = None
        self._executor = VerdictExecutor[Any](self, clock)
        self._frozen_until = 0.0
        self._up_backlog: list[Any] = []
        self.closed = False

    # -- the Transport protocol ----------------------------------------------------------

    async def __aenter__(self) -> tuple[Any, Any]:
        stack = AsyncExitStack()
        await stack.__aenter__()
        self._stack = stack
        try:
            inner_read, self._inner_write = await stack.enter_async_context(self._inner)
            to_client, client_read = anyio.create_memory_object_stream[Any](1)
            stack.push_async_callback(client_read.aclose)
            self._to_client = to_client
            tg = await stack.enter_async_context(anyio.create_task_group())
            # Exits run last-in first-out: stop our tasks before the inner transport closes.
            stack.callback(tg.cancel_scope.cancel)
            self._tg = tg
            if self._toxics.chain("upstream"):
                self._up_bytes = self._start_link("upstream", self._inner_write.send)
            deliver_down: Deliver = self._down_stage
            if self._toxics.chain("downstream"):
                down_bytes = self._start_link("downstream", self._down_stage)
                deliver_down = _encoder(down_bytes)
            tg.start_soon(self._relay_down, inner_read, deliver_down)
            if self.engine.timed():
                tg.start_soon(self._run_timed)
        except BaseException:
            self._stack = None
            await stack.__aexit__(None, None, None)
            raise
        return client_read, _WriteStream(self)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        if self._to_client is not None:
            self._to_client.close()
        if stack is not None:
            return await stack.__aexit__(exc_type, exc, tb)
        return None

    # -- client -> server ----------------------------------------------------------------

    async def send_up(self, message: Any) -> None:
        if self.closed:
            raise anyio.ClosedResourceError
        if not self.engine.active:
            await self._to_server(message)
            return
        info = info_from_message(getattr(message, "message", None), "upstream")
        await self._executor.apply(self.engine.on_frame(info), message, "upstream")

    async def _to_server(self, item: Any) -> None:
        # A frozen server does not read, but a client's write still succeeds (a pipe or socket
        # buffers it): frames wait in order in a backlog, and the caller's own timeout runs.
        if self._up_backlog or self._frozen_until > self._clock.now():
            self._up_backlog.append(item)
            if len(self._up_backlog) == 1:
                self._spawn(self._drain_up())
            return
        await self._write_up(item)

    async def _drain_up(self) -> None:
        await self._wait_thaw()
        try:
            while self._up_backlog:
                await self._write_up(self._up_backlog[0])
                self._up_backlog.pop(0)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._up_backlog.clear()  # the connection ended while the server was frozen

    async def _write_up(self, item: Any) -> None:
        if self._up_bytes is not None:
            await _encoder(self._up_bytes)(item)
        else:
            await self._inner_write.send(item)

    # -- server -> client ----------------------------------------------------------------

    async def _relay_down(self, inner_read: Any, deliver: Deliver) -> None:
        try:
            async for item in inner_read:
                await deliver(item)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            pass
        self._close_client()

    async def _down_stage(self, item: Any) -> None:
        if isinstance(item, Exception) or not self.engine.active:
            await self._to_client_send(item)
            return
        info = info_from_message(item.message, "downstream")
        await self._executor.apply(self.engine.on_frame(info), item, "downstream")

    async def _to_client_send(self, item: Any) -> None:
        await self._wait_thaw()
        if self._to_client is None:
            return
        with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            await self._to_client.send(item)

    # -- the actuator of the verdict executor ----------------------------------------------

    async def send(self, stream: str, item: Any) -> None:
        await (self._to_client_send if stream == "downstream" else self._to_server)(item)

    def corrupted(self, item: Any, keep: float) -> Any:
        # No bytes to cut in process: what an SDK transport passes on for an unparsable line.
        return ValueError("corrupted JSON-RPC frame")

    def injected(self, action: Inject) -> Any:
        if action.message is None:
            return ValueError("garbage bytes on the connection")
        from mcp.shared.message import SessionMessage
        from mcp_types import jsonrpc_message_adapter

        return SessionMessage(jsonrpc_message_adapter.validate_python(action.message))

    async def kill(self, how: str) -> None:
        await self.close_connection()

    def freeze(self, seconds: float) -> None:
        self._frozen_until = max(self._frozen_until, self._clock.now() + seconds)

    def spawn(self, work: Awaitable[None], stream: str | None) -> None:
        self._spawn(work)

    async def _run_timed(self) -> None:
        for fault in self.engine.timed():
            await self._clock.sleep(fault.at - self._clock.now())
            await self._executor.act(self.engine.fire_timed(fault.name))

    async def _wait_thaw(self) -> None:
        while (left := self._frozen_until - self._clock.now()) > 0:
            await self._clock.sleep(left)

    # -- closing -------------------------------------------------------------------------

    async def close_connection(self) -> None:
        """End the connection like a crashed server: the client reads EOF (every in-flight
        and later call fails with -32000) and the server reads EOF."""
        if self.closed:
            return
        self.closed = True
        self._close_client()
        if self._up_bytes is not None:
            self._up_bytes.close()
        if self._inner_write is not None:
            with anyio.CancelScope(shield=True):
                await self._inner_write.aclose()

    def _close_client(self) -> None:
        if self._to_client is not None:
            self._to_client.close()

    def _spawn(self, work: Awaitable[None]) -> None:
        if self._tg is None:
            raise HarnessDefect("the transport is not open")

        async def run() -> None:
            await work

        self._tg.start_soon(run)

    # -- toxics --------------------------------------------------------------------------

    def _start_link(self, stream: str, deliver: Deliver) -> MemoryObjectSendStream[bytes]:
        """A toxic link for ``stream``: frames go in as JSON lines, come out re-parsed."""
        assert self._tg is not None
        assert self._stack is not None
        send, receive = anyio.create_memory_object_stream[bytes](16)
        self._stack.push_async_callback(receive.aclose)
        self._stack.callback(send.close)
        link = ToxicLink(
            source=QueueSource(receive),
            sink=_LineSink(deliver, on_eof=self.close_connection),
            toxics=self._toxics,
            stream=stream,
            clock=self._clock,
            rng=self._rng.fork(f"toxics-{stream}"),
            on_event=self._toxic_event,
            reset_connection=lambda: self._spawn(self.close_connection()),
        )

        async def run() -> None:
            if await link.run():
                await self.close_connection()

        self._tg.start_soon(run)
        return send

    def _toxic_event(self, action: str, spec: Any, **details: Any) -> None:
        self._recorder.record(
            action,
            type=spec.type,
            target=self._target,
            name=spec.name,
            stream=spec.stream,
            connection=self._connection,
            **details,
        )


class _WriteStream:
    """The client's write stream: frames go through the fault stage in the caller's task."""

    def __init__(self, transport: FaultyTransport) -> None:
        self._transport = transport

    async def send(self, item: Any, /) -> None:
        await self._transport.send_up(item)

    async def aclose(self) -> None:
        # The inner transport closes its own streams when the wrapper exits.
        return None

    async def __aenter__(self) -> _WriteStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _encoder(queue: MemoryObjectSendStream[bytes]) -> Deliver:
    async def encode(item: Any) -> None:
        if isinstance(item, Exception):
            data = b"\xff not json\n"
        else:
            data = item.message.model_dump_json(by_alias=True, exclude_unset=True).encode()
            data += b"\n"
        with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            await queue.send(data)

    return encode


class _LineSink:
    """Splits the link's output into lines and delivers each as a parsed frame."""

    def __init__(self, deliver: Deliver, *, on_eof: Callable[[], Awaitable[None]]) -> None:
        self._deliver = deliver
        self._on_eof = on_eof
        # Frames are the harness's own here (the SDK's messages): no size limit, linear time.
        self._framer = LineFramer(limit=None)
        self._lines: deque[bytes] = deque()

    async def send(self, data: bytes) -> None:
        # Accept everything before the first await, as a ByteSink must.
        self._lines.extend(f for f in self._framer.feed(data) if isinstance(f, bytes))
        while self._lines:
            line = self._lines.popleft()
            await self._deliver(_parse(line.rstrip(b"\n")))

    async def send_eof(self) -> None:
        await self._on_eof()


def _parse(line: bytes) -> Any:
    from mcp.shared.message import SessionMessage
    from mcp_types import jsonrpc_message_adapter

    try:
        return SessionMessage(jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        return exc
