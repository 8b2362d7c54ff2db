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

``ctx`` and ``task`` follow ``harness.adapter`` (``RuntimeContext``, ``Task``); a scenario's
``runtime.options`` (``ctx.options``) are ``Options`` fields, e.g. ``{mcp_timeout: 150}``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastmcp.client.transports import (
    ClientTransport,
    StdioTransport,
    StreamableHttpTransport,
)
from fastmcp.client.transports.base import SessionKwargs, TransportOptions
from mcp import ClientSession, MCPError
from pydantic_ai import Agent, RunContext
from pydantic_ai.capabilities import ProcessHistory
from pydantic_ai.exceptions import AgentRunError
from pydantic_ai.mcp import CallToolFunc, MCPToolset, ToolResult
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.anthropic import AnthropicModel, AnthropicModelSettings
from pydantic_ai.providers.anthropic import AnthropicProvider
from typing_extensions import Unpack

from harness.adapter import RuntimeContext, ServerParams, Task

__all__ = ["Options", "PydanticAIRuntime", "StreamsTransport", "TaskDeps", "create", "make_factory"]

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


def client_transport(server: ServerParams) -> ClientTransport:
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


@dataclass(frozen=True)
class Options:
    """What a user configures in their own pydantic-ai deployment; a scenario picks them.

    ``keep_last_messages``: a history processor keeping the most recent messages (pydantic-ai's
    documented way to bound a conversation). ``thinking_budget``: extended thinking on.
    ``forward_context``: MCP calls carry the task's tab as ``_meta["harness/context_id"]`` (how an
    app tells a scoped server who is asking). ``declared_scope``: a tool call that omits
    ``context_id`` gets the task's declared scope (the scope-leak fix). ``delegate_to``: agents get
    a ``delegate`` tool running that subagent the documented way (``deps=ctx.deps``).
    """

    mcp_timeout: float = DEFAULT_MCP_TIMEOUT
    instructions: str = "You are an operations assistant."
    tool_error_behavior: Literal["retry", "error", "failed"] = "retry"
    keep_last_messages: int | None = None
    thinking_budget: int | None = None
    forward_context: bool = False
    declared_scope: bool = False
    delegate_to: str | None = None


@dataclass(frozen=True)
class TaskDeps:
    """A run's dependencies: where the task runs and the scope it declared."""

    context_id: str | None
    scope: str | None


class PydanticAIRuntime:
    """One pydantic-ai toolset per MCP server, shared by every task (one connection each)."""

    def __init__(self, ctx: RuntimeContext, options: Options) -> None:
        self._options = options
        self._capabilities: list[ProcessHistory[TaskDeps]] = []
        if options.keep_last_messages is not None:
            keep = options.keep_last_messages

            # async: pydantic-ai runs a plain-def processor in a worker thread, which would tie a
            # sim run to real time.
            async def keep_recent(messages: list[ModelMessage]) -> list[ModelMessage]:
                return messages[-keep:]

            self._capabilities.append(ProcessHistory(keep_recent))
        settings: AnthropicModelSettings = {"max_tokens": 4096}
        if options.thinking_budget is not None:
            settings["anthropic_thinking"] = {
                "type": "enabled",
                "budget_tokens": options.thinking_budget,
            }
        self._model = AnthropicModel(
            ctx.model,
            provider=AnthropicProvider(anthropic_client=ctx.client),
            settings=settings,
        )
        self._toolsets = [
            MCPToolset(
                client_transport(server),
                id=name,
                read_timeout=options.mcp_timeout,
                tool_error_behavior=options.tool_error_behavior,
                process_tool_call=self._process_tool_call,
            )
            for name, server in ctx.servers.items()
        ]
        self._scoped_tools: set[str] = set()
        self._stack = contextlib.AsyncExitStack()
        self._agents: dict[str, Agent[TaskDeps, str]] = {}

    async def start(self) -> None:
        # Entered once: the tasks share each server's connection, as agents of one process do.
        for toolset in self._toolsets:
            await self._stack.enter_async_context(toolset)
            for tool in await toolset.client.list_tools():
                if "context_id" in (tool.input_schema or {}).get("properties", {}):
                    self._scoped_tools.add(tool.name)

    async def _process_tool_call(
        self,
        ctx: RunContext[TaskDeps],
        call_tool: CallToolFunc,
        name: str,
        args: dict[str, Any],
    ) -> ToolResult:
        deps = ctx.deps
        if self._options.declared_scope and deps.scope and name in self._scoped_tools:
            args = {"context_id": deps.scope, **args}
        metadata = None
        if self._options.forward_context and deps.context_id:
            metadata = {"harness/context_id": deps.context_id}
        return await call_tool(name, args, metadata=metadata)

    def _agent(self, name: str) -> Agent[TaskDeps, str]:
        if name not in self._agents:
            agent = Agent(
                self._model,
                name=name,
                deps_type=TaskDeps,
                instructions=f"[agent:{name}] {self._options.instructions}",
                toolsets=self._toolsets,
                capabilities=self._capabilities,
            )
            sub = self._options.delegate_to
            if sub is not None and name != sub:

                @agent.tool
                async def delegate(ctx: RunContext[TaskDeps], task: str) -> str:
                    """Hand a task to the subagent and return its answer."""
                    result = await self._agent(sub).run(task, deps=ctx.deps, usage=ctx.usage)
                    return result.output

            self._agents[name] = agent
        return self._agents[name]

    async def run(self, task: Task) -> str:
        deps = TaskDeps(context_id=task.context_id, scope=task.scope)
        try:
            result = await self._agent(task.agent).run(task.prompt, deps=deps)
        except (MCPError, AgentRunError) as exc:
            # pydantic-ai ends a run it cannot finish by raising (tool_error_behavior "error": a
            # tool's failure; AgentRunError: a tool's retries spent, a usage limit), and the
            # application tells its user so. Any other exception is a crash the harness reports
            # as an error.
            return f"The run failed: {type(exc).__name__}: {exc}"
        return result.output

    async def aclose(self) -> None:
        await self._stack.aclose()


def make_factory(**options: Any) -> Callable[[RuntimeContext], Awaitable[PydanticAIRuntime]]:
    """A factory with options (``Options`` fields) fixed in code rather than by the scenario."""
    settings = Options(**options)

    async def factory(ctx: RuntimeContext) -> PydanticAIRuntime:
        runtime = PydanticAIRuntime(ctx, settings)
        try:
            await runtime.start()
        except BaseException:
            await runtime.aclose()
            raise
        return runtime

    return factory


async def create(ctx: RuntimeContext) -> PydanticAIRuntime:
    """The factory a scenario names: ``runtime: {adapter: examples.pydantic_ai.adapter:create,
    options: {...}}``, the options being ``Options`` fields."""
    return await make_factory(**ctx.options)(ctx)
