"""The stdio interposer: a fault-injecting relay between an MCP client and a server command.

``Interposer`` starts the server command with piped stdin/stdout (stderr is inherited, so the
server's stderr reaches the client exactly as without the interposer and nothing here can stall
on it) and relays newline-delimited JSON-RPC frames both ways::

    client stdin -> frame faults -> upstream toxics -> server stdin
    server stdout -> downstream toxics -> frame faults -> client stdout

Frames no fault touches keep their bytes and their order; a non-JSON line passes untouched.
Toxics live in a ``ToxicSet`` and frame faults in a ``FrameEngine``, so both can change while
frames flow (the control API does that); with ``counts`` the frame faults' counts are shared
with every other interposer of the same server (``SharedCounts``). ``run()`` returns the
server's exit status (``128+N`` when a signal ``N`` ended it), once the server has exited and
its output is relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import stat
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import IO, Any, Protocol

import anyio
from anyio.abc import TaskGroup

from harness.chaos_random import ChaosRandom
from harness.clock import Clock
from harness.errors import ServerError
from harness.faults.executor import VerdictExecutor
from harness.faults.frame_engine import (
    FrameEngine,
    Inject,
    encode,
    info_from_json,
)
from harness.faults.framing import DEFAULT_FRAME_LIMIT, LineFramer, Oversized, too_large_error
from harness.faults.link import QueueSource, ToxicLink
from harness.faults.plan import FaultPlan
from harness.faults.records import FaultRecorder
from harness.faults.shared_counts import SharedCounts
from harness.faults.toxic_set import ToxicSet
from harness.faults.toxics import ToxicSpec
from harness.process_tree import signal_tree

__all__ = ["Interposer", "exit_status"]

_READ_SIZE = 256 * 1024
# How long the server gets to exit after SIGTERM before it is killed.
_TERM_GRACE_SECONDS = 2.0

Deliver = Callable[[bytes], Awaitable[None]]


def exit_status(returncode: int) -> int:
    """A process's exit status as a shell reports it (``128+N`` for signal ``N``)."""
    return 128 - returncode if returncode < 0 else returncode


class Interposer:
    """Relays between this process's stdin/stdout (or the given pipes) and ``command``."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        plan: FaultPlan | None = None,
        name: str = "stdio",
        clock: Clock,
        rng: ChaosRandom,
        recorder: FaultRecorder,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
        max_frame_bytes: int | None = DEFAULT_FRAME_LIMIT,
        counts: SharedCounts | None = None,
    ) -> None:
        if not command:
            raise ServerError("no server command given")
        plan = (plan or FaultPlan()).for_target(name)
        self.command = list(command)
        self.name = name
        self._clock = clock
        self._rng = rng
        self._recorder = recorder
        self._stdin = stdin if stdin is not None else sys.stdin.buffer
        self._stdout = stdout if stdout is not None else sys.stdout.buffer
        self.toxics = ToxicSet()
        for spec in plan.toxics():
            self.toxics.add(spec)
        self.engine = FrameEngine(
            plan.frame_faults(),
            target=name,
            rng=rng.fork("frames"),
            recorder=recorder,
            shared=counts,
        )
        self._process: asyncio.subprocess.Process | None = None
        self._tg: TaskGroup | None = None
        self._to_server: Any = None
        self._client_out: _Writer | None = None
        self._executor = VerdictExecutor[bytes](self, clock)
        self._server_gone = False
        self._timed_scope: anyio.CancelScope | None = None
        self._in_transit = {"upstream": _InTransit(), "downstream": _InTransit()}
        self._timed_changed = anyio.Event()
        self._frame_limit = max_frame_bytes

    # -- faults that change while running (the control API) ---------------------------------

    def to_json(self) -> dict[str, Any]:
        """The interposer as a Toxiproxy proxy: it listens on stdio, always enabled."""
        return {
            "name": self.name,
            "listen": "stdio",
            "upstream": " ".join(self.command),
            "enabled": True,
            "toxics": [spec.to_json() for spec in self.toxics],
        }

    def add_toxic(self, spec: ToxicSpec) -> None:
        self.toxics.add(spec)
        self._record_change("added", spec.type, spec.name, stream=spec.stream)

    def update_toxic(self, name: str, data: object) -> ToxicSpec:
        spec = self.toxics.get(name).updated(data)
        self.toxics.replace(spec)
        self._record_change("updated", spec.type, spec.name, stream=spec.stream)
        return spec

    def remove_toxic(self, name: str) -> None:
        spec = self.toxics.remove(name)
        self._record_change("removed", spec.type, spec.name, stream=spec.stream)

    def add_fault(self, fault: Any) -> None:
        self.engine.add(fault)
        self._record_change("added", fault.type, fault.name)
        self._reschedule()

    def remove_fault(self, name: str) -> Any | None:
        fault = self.engine.remove(name)
        if fault is not None:
            self._record_change("removed", fault.type, fault.name)
        return fault

    def _record_change(self, action: str, kind: str, name: str, **extra: Any) -> None:
        self._recorder.record(
            action, type=kind, target=self.name, name=name, trigger="api", **extra
        )

    # -- running ------------------------------------------------------------------------------

    async def run(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> int:
        """Relay until the server has exited; returns its exit status."""
        self._clock.now()  # scenario time starts now
        client_in = await _open_reader(self._stdin)
        client_out = await _open_writer(self._stdout)
        self._client_out = client_out
        try:
            try:
                process = await asyncio.create_subprocess_exec(
                    *self.command,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=None,
                )
            except OSError as exc:
                raise ServerError(
                    f"cannot start the server command {self.command[0]!r}: {exc.strerror or exc}"
                ) from None
            self._process = process
            self._recorder.process = process.pid
            assert process.stdin is not None
            assert process.stdout is not None
            async with anyio.create_task_group() as tg:
                self._tg = tg
                up_send, up_receive = anyio.create_memory_object_stream[bytes](64)
                self._to_server = up_send
                task_status.started()
                tg.start_soon(self._read_client, client_in, up_send)
                tg.start_soon(self._run_upstream_link, up_receive, process.stdin)
                await self._run_downstream_link(process.stdout)
                if not self._server_gone:
                    await self._in_transit["downstream"].wait_idle()
                # The server's output ended: it exited or closed stdout. Wait for its status.
                returncode = await process.wait()
                tg.cancel_scope.cancel()
                up_receive.close()
        finally:
            with anyio.CancelScope(shield=True):
                await self._stop_server()
                client_out.close()
        return exit_status(returncode)

    async def terminate(self) -> None:
        """Ask the server to stop (SIGTERM, continuing it if frozen); kill it after a grace
        period. ``run()`` then returns its status."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        signal_tree(process.pid, signal.SIGTERM)
        with anyio.move_on_after(_TERM_GRACE_SECONDS):
            await process.wait()
        if process.returncode is None:
            signal_tree(process.pid, signal.SIGKILL)

    async def _stop_server(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        with anyio.move_on_after(_TERM_GRACE_SECONDS):
            await process.wait()
            return
        await self.terminate()
        await process.wait()

    # -- client -> server -----------------------------------------------------------------------

    async def _read_client(self, reader: _Reader, up: Any) -> None:
        """Split the client's bytes into frames and pass each through the frame stage."""
        framer = LineFramer(self._frame_limit)
        try:
            while data := await reader.read(_READ_SIZE):
                for frame in framer.feed(data):
                    if isinstance(frame, Oversized):
                        await self._refuse(frame, "request")
                    else:
                        await self._stage(frame, "upstream")
            if rest := framer.rest():
                await self._send_up(rest)
            # Delayed frames sent before the EOF still reach the server before it.
            await self._in_transit["upstream"].wait_idle()
        finally:
            # The client is done: once the frames before the EOF are through, so is the server.
            up.close()

    async def _refuse(self, frame: Oversized, what: str) -> None:
        """A frame over the size limit goes nowhere; the client gets a JSON-RPC error for it
        (its own request, or the request whose response the server made too large)."""
        print(
            f"interposer: a {what} frame of more than {frame.limit} bytes was refused",
            file=sys.stderr,
            flush=True,
        )
        await self._send_down(too_large_error(frame, what=what))

    async def _send_up(self, data: bytes) -> None:
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            await self._to_server.send(data)

    async def _run_upstream_link(self, receive: Any, server_in: asyncio.StreamWriter) -> None:
        link = self._link("upstream", QueueSource(receive), _WriterSink(server_in))
        await link.run()

    # -- server -> client -----------------------------------------------------------------------

    async def _run_downstream_link(self, server_out: asyncio.StreamReader) -> None:
        assert self._client_out is not None
        sink = _LineSink(self._stage_down, self._refuse, self._frame_limit)
        link = self._link("downstream", _ReaderSource(server_out), sink)
        await link.run()

    async def _stage_down(self, line: bytes) -> None:
        if self._server_gone:
            return
        await self._stage(line, "downstream")

    async def _send_down(self, data: bytes) -> None:
        writer = self._client_out
        if writer is None or writer.is_closing():
            return
        writer.write(data)
        with contextlib.suppress(OSError):
            await writer.drain()

    # -- the frame stage -----------------------------------------------------------------------

    async def _stage(self, line: bytes, direction: str) -> None:
        info = None
        if self.engine.active:
            with contextlib.suppress(ValueError):
                info = info_from_json(json.loads(line), direction)
        if info is None:  # no fault to apply, or not JSON: passed through untouched
            await self.send(direction, line)
            return
        await self._executor.apply(self.engine.on_frame(info), line, direction)

    # -- the actuator of the verdict executor ----------------------------------------------

    async def send(self, stream: str, item: bytes) -> None:
        await (self._send_down if stream == "downstream" else self._send_up)(item)

    def corrupted(self, item: bytes, keep: float) -> bytes:
        body = item.rstrip(b"\n")
        return body[: max(1, int(len(body) * keep))] + b"\n"

    def injected(self, action: Inject) -> bytes:
        if action.raw is not None:
            return action.raw + b"\n"
        return encode(action.message) if action.message is not None else b""

    async def kill(self, how: str) -> None:
        self._kill(how)

    def freeze(self, seconds: float) -> None:
        self._start_freeze(seconds)

    def spawn(self, work: Awaitable[None], stream: str | None) -> None:
        if stream is None:
            self._spawn(work)
            return
        # Counted from now (not from when the task starts), so an EOF right behind waits.
        in_transit = self._in_transit[stream]
        in_transit.add()

        async def run() -> None:
            try:
                await work
            finally:
                in_transit.done()

        self._spawn(run())

    def _kill(self, how: str) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        if how == "close_stdin":
            # Frames the client sends from now on go nowhere, as with a closed pipe.
            self._to_server.close()
            return
        if how == "SIGKILL":
            # A killed server says nothing more, even what it had not flushed to us yet.
            self._server_gone = True
        signal_tree(process.pid, signal.SIGKILL if how == "SIGKILL" else signal.SIGTERM)

    def _start_freeze(self, seconds: float) -> None:
        """SIGSTOP the server (its whole tree) now; SIGCONT it ``seconds`` later."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        signal_tree(process.pid, signal.SIGSTOP)

        async def thaw() -> None:
            try:
                await self._clock.sleep(seconds)
            finally:
                if process.returncode is None:
                    signal_tree(process.pid, signal.SIGCONT)

        self._spawn(thaw())

    # -- timed faults -------------------------------------------------------------------------

    async def run_timed(self) -> None:
        """Fire the ``at`` faults at their scenario times (restarts when faults change)."""
        fired: set[str] = set()
        while True:
            changed = self._timed_changed
            with anyio.CancelScope() as scope:
                self._timed_scope = scope
                for fault in self.engine.timed():
                    if fault.name in fired:
                        continue
                    await self._clock.sleep(fault.at - self._clock.now())
                    fired.add(fault.name)
                    await self._executor.act(self.engine.fire_timed(fault.name))
                await changed.wait()
            self._timed_scope = None

    def _reschedule(self) -> None:
        changed, self._timed_changed = self._timed_changed, anyio.Event()
        changed.set()
        if self._timed_scope is not None:
            self._timed_scope.cancel()

    # -- helpers ------------------------------------------------------------------------------

    def _spawn(self, work: Awaitable[None]) -> None:
        if self._tg is None:
            return

        async def run() -> None:
            await work

        self._tg.start_soon(run)

    def _link(self, stream: str, source: Any, sink: Any) -> ToxicLink:
        return ToxicLink(
            source=source,
            sink=sink,
            toxics=self.toxics,
            stream=stream,
            clock=self._clock,
            rng=self._rng.fork(f"toxics-{stream}"),
            on_event=self._toxic_event,
            reset_connection=lambda: self._kill("SIGKILL"),
        )

    def _toxic_event(self, action: str, spec: Any, **details: Any) -> None:
        self._recorder.record(
            action, type=spec.type, target=self.name, name=spec.name, stream=spec.stream, **details
        )


class _InTransit:
    """Counts delayed frames of one direction, so the end of the stream can wait for them."""

    def __init__(self) -> None:
        self._count = 0
        self._idle: anyio.Event | None = None

    def add(self) -> None:
        self._count += 1

    def done(self) -> None:
        self._count -= 1
        if self._count == 0 and self._idle is not None:
            self._idle.set()
            self._idle = None

    async def wait_idle(self) -> None:
        while self._count:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()


class _Reader(Protocol):
    async def read(self, n: int) -> bytes: ...


class _Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def is_closing(self) -> bool: ...

    def close(self) -> None: ...


def _is_stream(fd: int) -> bool:
    """Pipes, sockets and terminals can be watched by the loop; regular files and devices
    such as /dev/null cannot."""
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)


async def _open_reader(stream: IO[bytes]) -> _Reader:
    """A reader on a duplicate of ``stream``'s descriptor, so closing it leaves the process's
    own stdin alone."""
    fd = os.dup(stream.fileno())
    if not _is_stream(fd):
        return _FileReader(fd)
    reader = asyncio.StreamReader(limit=_READ_SIZE)
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    return reader


async def _open_writer(stream: IO[bytes]) -> _Writer:
    fd = os.dup(stream.fileno())
    if not _is_stream(fd):
        return _FileWriter(fd)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(fd, "wb", buffering=0)
    )
    return asyncio.StreamWriter(transport, protocol, None, loop)


class _FileReader:
    """Reads a regular file (never blocks for long, so no thread is needed)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def read(self, n: int) -> bytes:
        await anyio.lowlevel.checkpoint()
        return os.read(self._fd, n)


class _FileWriter:
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while self._fd is not None and view:
            view = view[os.write(self._fd, view) :]

    async def drain(self) -> None:
        await anyio.lowlevel.checkpoint()

    def is_closing(self) -> bool:
        return self._fd is None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _ReaderSource:
    __slots__ = ("_reader",)

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def receive(self) -> bytes:
        try:
            return await self._reader.read(_READ_SIZE)
        except OSError:
            return b""


class _WriterSink:
    __slots__ = ("_writer",)

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def send(self, data: bytes) -> None:
        if self._writer.is_closing():
            return
        self._writer.write(data)
        with contextlib.suppress(OSError):
            await self._writer.drain()

    async def send_eof(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()


class _LineSink:
    """Re-frames the downstream bytes into lines for the frame stage."""

    __slots__ = ("_framer", "_frames", "_refuse", "_stage")

    def __init__(
        self,
        stage: Deliver,
        refuse: Callable[[Oversized, str], Awaitable[None]],
        limit: int | None,
    ) -> None:
        self._stage = stage
        self._refuse = refuse
        self._framer = LineFramer(limit)
        self._frames: deque[bytes | Oversized] = deque()

    async def send(self, data: bytes) -> None:
        # Accept everything before the first await, as a ByteSink must.
        self._frames.extend(self._framer.feed(data))
        while self._frames:
            frame = self._frames.popleft()
            if isinstance(frame, Oversized):
                await self._refuse(frame, "response")
            else:
                await self._stage(frame)

    async def send_eof(self) -> None:
        if rest := self._framer.rest():
            await self._stage(rest)
