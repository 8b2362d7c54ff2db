"""How a server built on mcp 1.x differs on the wire from a 2.x one (``sdk: "1.x"``).

An mcp 1.x server knows the legacy ``initialize`` handshake only: a request for a method it
does not know (``server/discover``, the 2.x probe) fails its request validation and is answered
with -32602 "Invalid request parameters". Its ``initialize`` result has no 2.x-only
capabilities, and it writes nothing for a request cut off by its input closing (2.x answers it
with "Connection closed"). An unknown Mcp-Session-Id over streamable HTTP gets a 404 whose
JSON-RPC id is ``"server-error"`` (2.x: ``null``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import anyio
from mcp.server.context import HandlerResult
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_PARAMS, ErrorData, JSONRPCError, JSONRPCRequest
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "LEGACY_METHODS",
    "SESSION_NOT_FOUND_ID",
    "legacy_http_app",
    "legacy_read_stream",
    "legacy_result",
]

# The client requests of mcp 1.x's ClientRequest union.
LEGACY_METHODS: Final = frozenset(
    {
        "initialize",
        "ping",
        "completion/complete",
        "logging/setLevel",
        "prompts/get",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "tools/call",
        "tools/list",
    }
)
# Capabilities that only 2.x servers announce.
_NEW_CAPABILITIES: Final = ("extensions", "tasks")
SESSION_NOT_FOUND_ID: Final = "server-error"


def legacy_result(result: HandlerResult) -> HandlerResult:
    """``result`` as an mcp 1.x server would have sent it: without ``resultType`` (2.x tags
    every result) and, for ``initialize``, without 2.x-only capabilities."""
    if isinstance(result, BaseModel):
        body = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    elif isinstance(result, dict):
        body = dict(result)
    else:
        return result
    body.pop("resultType", None)
    capabilities = body.get("capabilities")
    if isinstance(capabilities, dict):
        body["capabilities"] = {k: v for k, v in capabilities.items() if k not in _NEW_CAPABILITIES}
    return body


def _unknown_method(request: JSONRPCRequest) -> SessionMessage:
    error = ErrorData(code=INVALID_PARAMS, message="Invalid request parameters", data="")
    return SessionMessage(JSONRPCError(jsonrpc="2.0", id=request.id, error=error))


@asynccontextmanager
async def legacy_read_stream(read_stream: Any, write_stream: Any) -> AsyncIterator[Any]:
    """``read_stream`` as an mcp 1.x server reads it: a request for a method 1.x does not know
    is answered with its validation error and never reaches the 2.x serve loop (which would
    otherwise switch the connection to the 2026 protocol on ``server/discover``)."""
    send, receive = anyio.create_memory_object_stream[Any](0)

    async def pump() -> None:
        async with send:
            async for item in read_stream:
                message = getattr(item, "message", None)
                if isinstance(message, JSONRPCRequest) and message.method not in LEGACY_METHODS:
                    await write_stream.send(_unknown_method(message))
                    continue
                await send.send(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(pump)
        try:
            yield receive
        finally:
            tg.cancel_scope.cancel()


def legacy_http_app(app: ASGIApp) -> ASGIApp:
    """``app`` answering over streamable HTTP as mcp 1.x's session manager does: a POST
    without a session id that is not ``initialize`` gets 400 "Bad Request: Missing session
    ID", and every JSON-RPC error body it writes itself has the id ``"server-error"``."""

    async def legacy(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        names = {key.decode().lower() for key, _ in scope.get("headers", [])}
        if scope["method"] == "POST" and "mcp-session-id" not in names:
            body, receive = await _buffer(receive)
            if _method_of(body) != "initialize":
                await _send_json(send, 400, "Bad Request: Missing session ID")
                return
        await app(scope, receive, _error_ids(send))

    return legacy


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _method_of(body: bytes) -> object:
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    return decoded.get("method") if isinstance(decoded, dict) else None


async def _send_json(send: Send, status: int, message: str) -> None:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": SESSION_NOT_FOUND_ID,
            "error": {"code": -32600, "message": message},
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error_ids(send: Send) -> Send:
    """A JSON error response (the manager's own: 404, 503) gets the 1.x id."""
    rewrite = False

    async def wrapped(message: Message) -> None:
        nonlocal rewrite
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            rewrite = message["status"] >= 400 and headers.get(b"content-type", b"").startswith(
                b"application/json"
            )
            if rewrite:
                headers.pop(b"content-length", None)
                message = {**message, "headers": list(headers.items())}
        elif message["type"] == "http.response.body" and rewrite:
            body = message.get("body", b"").replace(
                b'"id":null', b'"id":"' + SESSION_NOT_FOUND_ID.encode() + b'"'
            )
            message = {**message, "body": body}
        await send(message)

    return wrapped
