"""Scripted fake MCP servers (ssh, vault, traffic, cameras, chat) on the real ``mcp`` 2.x SDK.

In memory::

    fake = build_server("chat", script=ServerScript.load("chat-script.yaml"))
    async with Client(fake.server, mode="legacy") as client:
        await client.call_tool("chat_list_messages", {}, read_timeout_seconds=5)
    fake.events.events  # what the server saw

Over streamable HTTP in this process: ``async with serve_http(fake) as url: Client(url)``.
As a stdio subprocess: ``Client(stdio_parameters("chat", events="events.jsonl"))``, or from a
shell ``harness fake-mcp chat`` / ``python -m fake_servers.mcp.chat``.
"""

from fake_servers.mcp._base import SERVER_NAMES, FakeServer, build_server
from fake_servers.mcp._events import Event, EventKind, EventLog
from fake_servers.mcp._script import (
    Behaviour,
    Crash,
    ImageSpec,
    MatchRule,
    ProtocolError,
    Regex,
    ResultSpec,
    ServerScript,
    ToolScript,
)
from fake_servers.mcp._transports import serve_http, stdio_parameters

__all__ = [
    "SERVER_NAMES",
    "Behaviour",
    "Crash",
    "Event",
    "EventKind",
    "EventLog",
    "FakeServer",
    "ImageSpec",
    "MatchRule",
    "ProtocolError",
    "Regex",
    "ResultSpec",
    "ServerScript",
    "ToolScript",
    "build_server",
    "serve_http",
    "stdio_parameters",
]
