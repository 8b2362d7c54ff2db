"""One live MCP client connection, owned by its own task.

The ``mcp`` client enters task groups and cancel scopes when it connects; they must be exited by
the task that entered them. So each connection runs in a dedicated owner task (started in the
host manager's task group) that enters the ``Client``, reports it ready, and holds it open until
asked to close. Closing is bounded: the SDK's own stdio shutdown closes stdin, waits a grace
period and kills the process tree; we wait for that under a shield and a deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from mcp import Client
from mcp.client import Transport

__all__ = ["Connection"]

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
