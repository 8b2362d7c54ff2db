"""ASGI answers that are not plain JSON: SSE streams, stream cuts and connection drops.

A drop or cut must look like a broken connection to any client. On loopback the connection's
transport (tracked by the serving protocol, keyed by the client address) is closed without
finishing the response. In-process there is no socket: the app raises ``InjectedDisconnect``,
which ``httpx2.ASGITransport`` passes to the client, and the ``anthropic`` SDK reports as
``APIConnectionError``. The in-process transport buffers a whole response, so an in-process
stream cut surfaces as that error before any event is seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import anyio
from starlette.types import Receive, Scope, Send

__all__ = ["ConnectionRegistry", "DropConnection", "InjectedDisconnect", "SSEStream"]

ConnectionRegistry = dict[Any, asyncio.BaseTransport]
"""Open loopback connections by client address ``(host, port)``."""

_DISCONNECT_WAIT = 5.0


class InjectedDisconnect(ConnectionError):
    """Raised by the in-process app to emulate a connection dropped by the server."""


async def _close_connection(
    scope: Scope, receive: Receive, connections: ConnectionRegistry, reason: str
) -> None:
    transport = connections.get(scope.get("client"))
    if transport is None:
        raise InjectedDisconnect(reason)
    transport.close()
    # Wait until the server notices the closed connection so it does not try to answer.
    with anyio.move_on_after(_DISCONNECT_WAIT):
        while (await receive())["type"] != "http.disconnect":
            pass


class DropConnection:
    """Close the connection without any response."""

    def __init__(self, connections: ConnectionRegistry) -> None:
        self._connections = connections

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _close_connection(scope, receive, self._connections, "connection dropped")


class SSEStream:
    """Send encoded SSE events; with ``cut_after`` close the connection after that many."""

    def __init__(
        self,
        events: list[bytes],
        headers: MutableMapping[str, str],
        *,
        connections: ConnectionRegistry,
        cut_after: int | None = None,
    ) -> None:
        self._events = events
        self._headers = [(k.encode(), v.encode()) for k, v in headers.items()]
        self._connections = connections
        self._cut_after = cut_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self._headers})
        for index, event in enumerate(self._events):
            if index == self._cut_after:
                await _close_connection(scope, receive, self._connections, "stream cut")
                return
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
