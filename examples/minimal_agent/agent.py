"""The smallest external agent: copy it, then make it yours.

Contract (what the harness gives every agent process in live mode):
  ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY  the Messages API to talk to (the harness's fake)
  HARNESS_MCP_CONFIG                     a JSON file {"mcpServers": {name: {command, args, env}
                                         or {url}}}, as Claude Desktop / Claude Code read it
  HARNESS_PROMPT                         the task (also on stdin)
The answer goes to stdout; the exit status, stderr and a hang are recorded.

Needs only `anthropic` and `mcp` (2.x), both in the harness's environment.
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

MODEL = os.environ.get("AGENT_MODEL", "claude-sonnet-4-6")
TIMEOUT = float(os.environ.get("AGENT_MCP_TIMEOUT", "60"))  # per tool call, seconds


async def call(client: Client, use: Any, results: list[dict[str, Any]], i: int) -> None:
    """One tool call as a tool_result block; failures go to the model as errors."""
    try:
        result = await client.call_tool(use.name, use.input, read_timeout_seconds=TIMEOUT)
        text = "\n".join(getattr(block, "text", "") for block in result.content)
        content, is_error = text or "(empty)", bool(result.is_error)
    except MCPError as error:
        content, is_error = str(error), True
    results[i] = {"type": "tool_result", "tool_use_id": use.id, "content": content,
                  "is_error": is_error}  # fmt: skip


async def main(prompt: str, config: dict[str, Any]) -> None:
    api = anthropic.AsyncAnthropic()  # reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY
    async with AsyncExitStack() as stack:
        owner: dict[str, Client] = {}  # tool name -> the connected server that has it
        tools: list[Any] = []
        for entry in config.values():
            target: Any = entry.get("url") or StdioServerParameters(
                command=entry["command"], args=entry.get("args", []),
                env={**os.environ, **entry.get("env", {})},
            )  # fmt: skip
            client = await stack.enter_async_context(Client(target))
            for tool in (await client.list_tools()).tools:
                owner[tool.name] = client
                tools.append({"name": tool.name, "description": tool.description or "",
                              "input_schema": tool.input_schema})  # fmt: skip
        messages: list[Any] = [{"role": "user", "content": prompt}]
        while True:
            reply = await api.messages.create(
                model=MODEL,
                max_tokens=4096,
                messages=messages,
                tools=tools,
            )
            messages.append({"role": "assistant", "content": reply.content})
            uses = [block for block in reply.content if block.type == "tool_use"]
            if reply.stop_reason != "tool_use" or not uses:
                print("".join(block.text for block in reply.content if block.type == "text"))
                return
            results: list[dict[str, Any]] = [{}] * len(uses)
            async with anyio.create_task_group() as tg:  # parallel tool calls run concurrently
                for i, use in enumerate(uses):
                    tg.start_soon(call, owner[use.name], use, results, i)
            messages.append({"role": "user", "content": results})


if __name__ == "__main__":
    mcp_servers = json.loads(Path(os.environ["HARNESS_MCP_CONFIG"]).read_text())["mcpServers"]
    anyio.run(main, os.environ.get("HARNESS_PROMPT") or sys.stdin.read(), mcp_servers)
