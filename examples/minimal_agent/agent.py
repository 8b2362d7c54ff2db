"""The smallest agent under test: copy it, then make it yours.

One tool loop (``run_agent``) on the ``anthropic`` SDK and ``mcp`` 2.x, two ways in:

- as an agent process (``runtime: {command: [python, examples/minimal_agent/agent.py]}``, live
  mode): ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY name the API, HARNESS_MCP_CONFIG a JSON file
  {"mcpServers": {name: {command, args, env} or {url}}} as Claude Desktop / Claude Code read it,
  HARNESS_PROMPT (also on stdin) the task, HARNESS_AGENT the agent's name; the answer goes to
  stdout. Knobs: AGENT_MODEL, AGENT_MCP_TIMEOUT (seconds per tool call, default 60),
  AGENT_STRICT_CALLS=1.
- in the harness's process (``runtime: {adapter: "examples.minimal_agent.agent:create"}``, sim
  and live): ``create(ctx)`` follows ``harness.adapter``; ``ctx.options`` may set
  ``mcp_timeout`` and ``strict_calls``.

``strict_calls`` is the bug to find: the turn's parallel calls run in one task group and a
failure raises out of it, so one call's timeout loses its siblings' results (every call of the
turn is reported failed).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anthropic
import anyio
from mcp import Client, MCPError, StdioServerParameters


async def call(client: Client, use: Any, timeout: float, strict: bool) -> dict[str, Any]:
    """One tool call as a tool_result block; failures go to the model as errors."""
    try:
        result = await client.call_tool(use.name, use.input, read_timeout_seconds=timeout)
        text = "\n".join(getattr(block, "text", "") for block in result.content)
        content, is_error = text or "(empty)", bool(result.is_error)
    except MCPError as error:
        if strict:
            raise
        content, is_error = str(error), True
    return {"type": "tool_result", "tool_use_id": use.id, "content": content, "is_error": is_error}


async def run_agent(
    api: anthropic.AsyncAnthropic,
    servers: dict[str, Any],  # name -> what mcp.Client takes (parameters, URL, transport)
    prompt: str,
    *,
    model: str = "claude-sonnet-4-6",
    agent: str = "main",
    timeout: float = 60.0,
    strict: bool = False,
) -> str:
    async with AsyncExitStack() as stack:
        owner: dict[str, Client] = {}  # tool name -> the connected server that has it
        tools: list[Any] = []
        for target in servers.values():
            client = await stack.enter_async_context(Client(target))
            for tool in (await client.list_tools()).tools:
                owner[tool.name] = client
                tools.append({"name": tool.name, "description": tool.description or "",
                              "input_schema": tool.input_schema})  # fmt: skip
        messages: list[Any] = [{"role": "user", "content": prompt}]
        while True:
            reply = await api.messages.create(
                model=model,
                max_tokens=4096,
                system=f"[agent:{agent}] You are a careful operations agent.",
                messages=messages,
                tools=tools,
            )
            messages.append({"role": "assistant", "content": reply.content})
            uses = [block for block in reply.content if block.type == "tool_use"]
            if reply.stop_reason != "tool_use" or not uses:
                return "".join(block.text for block in reply.content if block.type == "text")
            results: list[dict[str, Any]] = [{}] * len(uses)

            async def one(i: int, use: Any, into: list[dict[str, Any]]) -> None:
                into[i] = await call(owner[use.name], use, timeout, strict)

            try:
                async with anyio.create_task_group() as tg:  # parallel calls run concurrently
                    for i, use in enumerate(uses):
                        tg.start_soon(one, i, use, results)
            except* MCPError as failed:  # strict: one failure cancelled the turn
                why = str(failed.exceptions[0])
                results = [{"type": "tool_result", "tool_use_id": use.id, "content": why,
                            "is_error": True} for use in uses]  # fmt: skip
            messages.append({"role": "user", "content": results})


class MinimalRuntime:
    """``run_agent`` behind the harness's runtime protocol (``harness.adapter``)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    async def run(self, task: Any) -> str:
        options = self.ctx.options
        return await run_agent(
            self.ctx.client,
            {name: params.transport_target() for name, params in self.ctx.servers.items()},
            task.prompt,
            model=self.ctx.model,
            agent=task.agent,
            timeout=float(options.get("mcp_timeout", 60.0)),
            strict=bool(options.get("strict_calls", False)),
        )

    async def aclose(self) -> None:
        pass  # each run() closes its own connections


async def create(ctx: Any) -> MinimalRuntime:
    return MinimalRuntime(ctx)


def main() -> None:
    config = json.loads(Path(os.environ["HARNESS_MCP_CONFIG"]).read_text())["mcpServers"]
    servers: dict[str, Any] = {}
    for name, entry in config.items():
        servers[name] = entry.get("url") or StdioServerParameters(
            command=entry["command"], args=entry.get("args", []),
            env={**os.environ, **entry.get("env", {})},
        )  # fmt: skip
    prompt = os.environ.get("HARNESS_PROMPT") or sys.stdin.read()
    answer = anyio.run(
        lambda: run_agent(
            anthropic.AsyncAnthropic(),  # reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY
            servers,
            prompt,
            model=os.environ.get("AGENT_MODEL", "claude-sonnet-4-6"),
            agent=os.environ.get("HARNESS_AGENT", "main"),
            timeout=float(os.environ.get("AGENT_MCP_TIMEOUT", "60")),
            strict=os.environ.get("AGENT_STRICT_CALLS") == "1",
        )
    )
    print(answer)


if __name__ == "__main__":
    main()
