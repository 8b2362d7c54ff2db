"""One live MCP client connection, owned by its own task.

The ``mcp`` client enters task groups and cancel scopes when it connects; they must be exited by
the task that entered them. So each connection runs in a dedicated owner task (started in the
host manager's task group) that enters the ``Client``, reports it ready, and holds it open until
asked to close. Closing is bounded: the SDK's own stdio shutdown closes stdin, waits a grace
period and kills the process tree; we wait for that under a shield and a deadline.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import anyio
from anyio.abc import TaskGroup, TaskStatus
from mcp import Client
from mcp.client import Transport
from mcp.types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

__all__ = ["CallRegistry", "Connection", "StderrSinks", "TrackedCall", "reply_guard"]

# The SDK's stdio shutdown is itself bounded (stdin close, SIGTERM, SIGKILL); this deadline only
# guards against a transport that never returns.
_CLOSE_DEADLINE = 10.0


class Connection:
    """A connected ``mcp.Client`` with a generation number, closed from any task."""

    def __init__(self, server: str, generation: int) -> None:
        self.server = server
        self.generation = generation
        self.client: Client | None = None
        self.error: BaseException | None = None
        self._close_requested = anyio.Event()
        self._closed = anyio.Event()

    @classmethod
    async def open(
        cls,
        tg: TaskGroup,
        *,
        server: str,
        generation: int,
        transport: Callable[[], Transport | Any],
    ) -> Connection:
        """Connect in a new owner task in ``tg``; raises what the handshake raised."""
        conn = cls(server, generation)
        await tg.start(conn._own, transport)
        return conn

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def _own(
        self, transport: Callable[[], Transport | Any], *, task_status: TaskStatus[None]
    ) -> None:
        started = False
        try:
            async with Client(transport(), mode="legacy", cache=None) as client:
                self.client = client
                started = True
                task_status.started()
                await self._close_requested.wait()
        except Exception as exc:
            # Before start, tg.start() re-raises it to the connecting caller; after start, a dead
            # transport must not take the manager's task group (and every agent) down with it.
            self.error = exc
            if not started:
                raise
        finally:
            self.client = None
            self._closed.set()

    async def close(self) -> None:
        """Ask the owner task to disconnect and wait for it, shielded and bounded."""
        self._close_requested.set()
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_DEADLINE):
            await self._closed.wait()

    async def wait_closed(self) -> None:
        """Wait until the connection has ended (closed by us or died)."""
        await self._closed.wait()


@dataclass(eq=False)
class TrackedCall:
    """One tool call in flight, cancellable by the client (a user's interrupt, a cancel fault)."""

    server: str
    tool: str
    nth: int
    """1-based, per server, in the order calls started."""
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)


class CallRegistry:
    """The tool calls in flight, and listeners told of each call as it starts."""

    def __init__(self) -> None:
        self._live: list[TrackedCall] = []
        self._counts: dict[str, int] = {}
        self._listeners: list[Callable[[TrackedCall], None]] = []

    def on_start(self, listener: Callable[[TrackedCall], None]) -> None:
        self._listeners.append(listener)

    def in_flight(self, server: str | None = None) -> list[TrackedCall]:
        return [c for c in self._live if server is None or c.server == server]

    @contextmanager
    def track(self, server: str, tool: str) -> Iterator[TrackedCall]:
        nth = self._counts[server] = self._counts.get(server, 0) + 1
        call = TrackedCall(server, tool, nth)
        self._live.append(call)
        try:
            for listener in self._listeners:
                listener(call)
            yield call
        finally:
            self._live.remove(call)


class _GuardedWrite:
    def __init__(self, inner: Any, pending: set[Any]) -> None:
        self._inner = inner
        self._pending = pending

    async def send(self, item: Any, /) -> None:
        message = getattr(item, "message", None)
        if isinstance(message, JSONRPCRequest):
            self._pending.add(message.id)
        elif (
            isinstance(message, JSONRPCNotification)
            and message.method == "notifications/cancelled"
            and isinstance(message.params, dict)
        ):
            # The client gave up on it: its answer, should it come, has nobody waiting.
            self._pending.discard(message.params.get("requestId"))
        await self._inner.send(item)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _GuardedWrite:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        return bool(await self._inner.__aexit__(*exc))


class _GuardedRead:
    def __init__(self, inner: Any, pending: set[Any], on_stray: Callable[[Any], None]) -> None:
        self._inner = inner
        self._pending = pending
        self._on_stray = on_stray
        self._ended = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # e.g. the SDK's ``last_context``

    async def receive(self) -> Any:
        if self._ended:
            raise anyio.EndOfStream
        item = await self._inner.receive()
        message = getattr(item, "message", None)
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
            if message.id in self._pending:
                self._pending.discard(message.id)
            else:
                # What mcp 1.x did with an answer nobody waited for: its receive loop broke
                # and the session ended under every call in flight.
                self._ended = True
                self._on_stray(message.id)
                raise anyio.EndOfStream
        return item

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _GuardedRead:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _GuardedRead:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        return bool(await self._inner.__aexit__(*exc))


@asynccontextmanager
async def reply_guard(inner: Any, on_stray: Callable[[Any], None]) -> AsyncIterator[Any]:
    """A client transport that ends the session on a response to a request nobody waits for
    (never issued, answered already, or cancelled by the client); ``on_stray`` hears its id."""
    async with inner as (read, write):
        pending: set[Any] = set()
        yield _GuardedRead(read, pending, on_stray), _GuardedWrite(write, pending)


StderrMode = Literal["inherit", "drain", "pipe_unread"]


class StderrSinks:
    """Where stdio servers' stderr goes: the runtime's own (``inherit``), a pipe per server read
    and discarded by a thread (``drain``), or a pipe per server nobody reads (``pipe_unread``:
    a server that writes more than the pipe holds blocks)."""

    def __init__(self, mode: StderrMode) -> None:
        self.mode = mode
        self._writers: dict[str, IO[str]] = {}
        self._readers: list[int] = []

    def errlog(self, server: str) -> IO[str] | None:
        """The ``errlog`` for a stdio server's process; ``None``: the SDK's default."""
        if self.mode == "inherit":
            return None
        writer = self._writers.get(server)
        if writer is None:
            read_fd, write_fd = os.pipe()
            writer = self._writers[server] = os.fdopen(write_fd, "w")
            if self.mode == "drain":
                threading.Thread(
                    target=_drain, args=(read_fd,), name=f"stderr-{server}", daemon=True
                ).start()
            else:
                self._readers.append(read_fd)
        return writer

    def close(self) -> None:
        """Close the runtime's ends (a draining thread ends when the servers' ends close)."""
        for writer in self._writers.values():
            writer.close()
        for fd in self._readers:
            os.close(fd)
        self._writers.clear()
        self._readers.clear()


def _drain(fd: int) -> None:
    with os.fdopen(fd, "rb", buffering=0) as reader:
        while reader.read(65536):
            pass
