"""A proxy: a loopback listener forwarding each connection to one upstream through toxics."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from harness.chaos_random import ChaosRandom
from harness.clock import Clock
from harness.errors import ServerError
from harness.faults.proxy._addresses import Address, format_address
from harness.faults.proxy._connection import Connection
from harness.faults.records import FaultRecorder
from harness.faults.toxic_set import ToxicSet
from harness.faults.toxics import ToxicSpec

__all__ = ["Proxy"]


class Proxy:
    """Toxiproxy's proxy: ``name``, ``listen``, ``upstream``, ``enabled`` and its toxics.

    While enabled it listens and relays; disabling closes the listener and every connection.
    Listening on port 0 picks a free port, and ``listen`` then shows the bound one (kept when
    the proxy is re-enabled).
    """

    def __init__(
        self,
        *,
        name: str,
        listen: Address,
        upstream: Address,
        clock: Clock,
        rng: ChaosRandom,
        recorder: FaultRecorder,
    ) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.toxics = ToxicSet()
        self._clock = clock
        self._rng = rng
        self._recorder = recorder
        self._scope: anyio.CancelScope | None = None
        self._stopped: anyio.Event | None = None
        self._connections: set[Connection] = set()
        self._accepted = 0

    @property
    def enabled(self) -> bool:
        return self._scope is not None

    @property
    def connections(self) -> int:
        """Live proxied connections."""
        return len(self._connections)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": format_address(self.listen),
            "upstream": format_address(self.upstream),
            "enabled": self.enabled,
            "toxics": [spec.to_json() for spec in self.toxics],
        }

    async def start(self, task_group: TaskGroup) -> None:
        """Start listening (no-op when enabled); raises ``ServerError`` if it cannot bind."""
        if self.enabled:
            return
        try:
            await task_group.start(self._serve)
        except OSError as exc:
            raise ServerError(
                f"proxy {self.name!r} cannot listen on {format_address(self.listen)}: "
                f"{exc.strerror or exc}"
            ) from None

    async def stop(self) -> None:
        """Close the listener and every connection; returns once all are closed."""
        scope, stopped = self._scope, self._stopped
        if scope is None or stopped is None:
            return
        self._scope = None
        scope.cancel()
        await stopped.wait()

    def add_toxic(self, spec: ToxicSpec) -> None:
        self.toxics.add(spec)
        self._record_toxic("added", spec)

    def update_toxic(self, name: str, data: object) -> ToxicSpec:
        spec = self.toxics.get(name).updated(data)
        self.toxics.replace(spec)
        self._record_toxic("updated", spec)
        return spec

    def remove_toxic(self, name: str) -> None:
        self._record_toxic("removed", self.toxics.remove(name))

    def remove_all_toxics(self) -> None:
        for spec in self.toxics.clear():
            self._record_toxic("removed", spec)

    def record_down(self, down: bool) -> None:
        """Record that the proxy was taken down (disabled) or brought back up."""
        self._recorder.record(
            "disabled" if down else "enabled", type="down", target=self.name, trigger="api"
        )

    def _record_toxic(self, action: str, spec: ToxicSpec, **details: Any) -> None:
        self._recorder.record(
            action,
            type=spec.type,
            target=self.name,
            name=spec.name,
            stream=spec.stream,
            trigger="api",
            toxicity=spec.toxicity,
            attributes=spec.toxic.attributes(),
            **details,
        )

    def _connection_event(self, action: str, spec: ToxicSpec, **details: Any) -> None:
        self._recorder.record(
            action, type=spec.type, target=self.name, name=spec.name, stream=spec.stream, **details
        )

    async def _serve(self, *, task_status: TaskStatus[None]) -> None:
        stopped = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as connections:
                    # asyncio runs this in a short task of its own; the connection itself runs
                    # in the proxy's task group so stopping the proxy closes it.
                    async def accept(
                        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                    ) -> None:
                        self._accepted += 1
                        connection = Connection(
                            index=self._accepted,
                            client=(reader, writer),
                            upstream=self.upstream,
                            toxics=self.toxics,
                            clock=self._clock,
                            rng=self._rng.fork(f"connection-{self._accepted}"),
                            on_event=self._connection_event,
                        )
                        connections.start_soon(self._run_connection, connection)

                    server = await asyncio.start_server(accept, *self.listen)
                    try:
                        bound = server.sockets[0].getsockname()
                        self.listen = (self.listen[0], int(bound[1]))
                        self._scope, self._stopped = scope, stopped
                        task_status.started()
                        await anyio.sleep_forever()
                    finally:
                        server.close()
                        connections.cancel_scope.cancel()
        finally:
            stopped.set()

    async def _run_connection(self, connection: Connection) -> None:
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)
