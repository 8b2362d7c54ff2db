"""A pydantic-ai agent as a runtime under test: ``examples.pydantic_ai.adapter:create``.

The harness hands the runtime its world (``ctx``) and asks it for answers (``task``); this module
only translates that into what pydantic-ai takes, as a user would for their own deployment:

- the model: ``AnthropicModel(ctx.model, provider=AnthropicProvider(anthropic_client=ctx.client))``
  (the ``AsyncAnthropic`` client the harness points at its fake API);
- each MCP server: one ``MCPToolset`` over a fastmcp client transport: ``StdioTransport`` for a
  command, ``StreamableHttpTransport`` for a URL, and for an in-memory server a small
  ``ClientTransport`` (``StreamsTransport``) that opens a ``ClientSession`` on the
  ``(read_stream, write_stream)`` pair the harness's ``connect()`` yields;
- each task: one ``Agent.run``. The agent's name goes into its instructions as ``[agent:NAME]`` so
  the fake API routes the request to that agent's script.

Only duck typing on ``ctx`` and ``task``: the attribute names are the whole contract.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

from fastmcp.client.transports import (
    ClientTransport,
    StdioTransport,
    StreamableHttpTransport,
)
from fastmcp.client.transports.base import SessionKwargs, TransportOptions
from mcp import ClientSession
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from typing_extensions import Unpack

__all__ = ["PydanticAIRuntime", "StreamsTransport", "create", "make_factory"]

# pydantic-ai's own default for MCPToolset(read_timeout=...) is 300 s; a scenario sets its own.
DEFAULT_MCP_TIMEOUT = 300.0


class StreamsTransport(ClientTransport):
    """A fastmcp transport over any ``connect()`` yielding MCP ``(read, write)`` streams.

    fastmcp's ``Client`` wants a ``ClientTransport`` whose ``connect_session`` yields an
    uninitialized ``mcp.ClientSession``; the harness's in-memory servers (behind its fault layer)
    give memory streams of ``SessionMessage``. A new ``connect()`` per session, like a respawn.
    """

    def __init__(self, connect: Callable[[], contextlib.AbstractAsyncContextManager[Any]]) -> None:
        self._connect = connect

    @contextlib.asynccontextmanager
    async def connect_session(
        self,
        *,
        transport_options: TransportOptions | None = None,
        **session_kwargs: Unpack[SessionKwargs],
    ) -> AsyncGenerator[ClientSession, None]:
        options = transport_options or TransportOptions()
        async with (
            self._connect() as (read_stream, write_stream),
            options.session_class(
                read_stream=read_stream, write_stream=write_stream, **session_kwargs
            ) as session,
        ):
            yield session

    def __repr__(self) -> str:
        return "<StreamsTransport>"


def client_transport(server: Any) -> ClientTransport:
    """The fastmcp transport for one of ``ctx.servers``' values."""
    if server.transport == "memory":
        return StreamsTransport(server.connect)
    if server.transport == "stdio":
        return StdioTransport(
            command=server.command, args=list(server.args), env=dict(server.env or {}) or None
        )
    if server.transport == "http":
        return StreamableHttpTransport(server.url)
    raise ValueError(f"server {server.name!r}: unknown transport {server.transport!r}")


class PydanticAIRuntime:
    """One pydantic-ai toolset per MCP server, shared by every task (one connection each)."""

    def __init__(
        self,
        ctx: Any,
        *,
        mcp_timeout: float,
        instructions: str,
        tool_error_behavior: str,
    ) -> None:
        self._model = AnthropicModel(
            ctx.model, provider=AnthropicProvider(anthropic_client=ctx.client)
        )
        self._toolsets = [
            MCPToolset(
                client_transport(server),
                id=name,
                read_timeout=mcp_timeout,
                tool_error_behavior=tool_error_behavior,  # type: ignore[arg-type]
            )
            for name, server in ctx.servers.items()
        ]
        self._instructions = instructions
        self._stack = contextlib.AsyncExitStack()
        self._agents: dict[str, Agent[None, str]] = {}

    async def start(self) -> None:
        # Entered once: the tasks share each server's connection, as agents of one process do.
        for toolset in self._toolsets:
            await self._stack.enter_async_context(toolset)

    def _agent(self, name: str) -> Agent[None, str]:
        if name not in self._agents:
            self._agents[name] = Agent(
                self._model,
                name=name,
                instructions=f"[agent:{name}] {self._instructions}",
                toolsets=self._toolsets,
            )
        return self._agents[name]

    async def run(self, task: Any) -> str:
        result = await self._agent(task.agent).run(task.prompt)
        return result.output

    async def aclose(self) -> None:
        await self._stack.aclose()


def make_factory(
    *,
    mcp_timeout: float = DEFAULT_MCP_TIMEOUT,
    instructions: str = "You are an operations assistant.",
    tool_error_behavior: str = "retry",
) -> Callable[[Any], Any]:
    """A factory with options (e.g. the MCP call timeout a scenario needs)."""

    async def factory(ctx: Any) -> PydanticAIRuntime:
        runtime = PydanticAIRuntime(
            ctx,
            mcp_timeout=mcp_timeout,
            instructions=instructions,
            tool_error_behavior=tool_error_behavior,
        )
        try:
            await runtime.start()
        except BaseException:
            await runtime.aclose()
            raise
        return runtime

    return factory


create = make_factory()
