"""Bounds of a fake server on streamable HTTP (a module of its own: the CLI reads them without
importing the MCP SDK).

A session no request has used for ``SESSION_IDLE_TIMEOUT`` seconds is closed (the SDK's default
is 30 minutes), and at most ``MAX_SESSIONS`` are open at once (the next client gets a 503): a
client that opens sessions and never closes them cannot grow the server without bound.
"""

from __future__ import annotations

__all__ = ["MAX_SESSIONS", "SESSION_IDLE_TIMEOUT"]

SESSION_IDLE_TIMEOUT = 300.0
MAX_SESSIONS = 1000
