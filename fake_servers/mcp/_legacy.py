"""How a server built on mcp 1.x differs on the wire from a 2.x one (``sdk: "1.x"``).

An mcp 1.x server knows the legacy ``initialize`` handshake only: a request for a method it
does not know (``server/discover``, the 2.x probe) fails its request validation and is answered
with -32602 "Invalid request parameters". Its ``initialize`` result has no 2.x-only
capabilities, and it writes nothing for a request cut off by its input closing (2.x answers it
with "Connection closed"). An unknown Mcp-Session-Id over streamable HTTP gets a 404 whose
JSON-RPC id is ``"server-error"`` (2.x: ``null``).
"""

from __future__ import annotations

from typing import Final

from mcp.server.context import HandlerResult
from pydantic import BaseModel

__all__ = ["LEGACY_METHODS", "SESSION_NOT_FOUND_ID", "legacy_result"]

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
