"""A LangGraph agent as an external agent process (run it with examples/langgraph/.venv/bin/python).

The external-process contract: ``ANTHROPIC_BASE_URL`` / ``ANTHROPIC_API_KEY`` for the model,
``HARNESS_MCP_CONFIG`` (an ``mcpServers`` JSON file) for the tools, the prompt in
``HARNESS_PROMPT`` or on stdin, the answer on stdout. The agent is LangChain's ``create_agent``
(a LangGraph graph) with ``ChatAnthropic`` and the MCP tools of ``langchain-mcp-adapters``, used
as their documentation shows:

- default: ``MultiServerMCPClient(...).get_tools()``: every tool call opens its own MCP session
  (for a stdio server: its own server process);
- ``--shared-session``: one session per server for the whole run (``client.session(name)`` +
  ``load_mcp_tools``), the long-lived-connection pattern.

``--mcp-timeout`` sets the MCP client's read timeout (``session_kwargs.read_timeout_seconds``);
``--summarize-at N`` adds ``SummarizationMiddleware(trigger=("tokens", N), keep=("messages", K))``;
``--thinking-budget`` turns on extended thinking;
``--subagent`` gives the agent a ``delegate`` tool that runs a second agent (the same tools,
its own system prompt ``[agent:sub]``) on a task the model writes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import SummarizationMiddleware
from langchain_anthropic import ChatAnthropic
from langchain_core.tools import BaseTool, tool
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.tools import load_mcp_tools


def connections(path: str, timeout: float | None) -> dict[str, Any]:
    """``langchain-mcp-adapters`` connections from an ``mcpServers`` file."""
    result: dict[str, Any] = {}
    for name, entry in json.loads(Path(path).read_text())["mcpServers"].items():
        if "url" in entry:
            conn: dict[str, Any] = {"transport": "streamable_http", "url": entry["url"]}
        else:
            conn = {
                "transport": "stdio",
                "command": entry["command"],
                "args": entry.get("args", []),
                "env": {**os.environ, **entry.get("env", {})},
            }
        if timeout is not None:
            conn["session_kwargs"] = {"read_timeout_seconds": timedelta(seconds=timeout)}
        result[name] = conn
    return result


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="claude-sonnet-4-6")
    parser.add_argument("--mcp-timeout", type=float, default=None)
    parser.add_argument("--shared-session", action="store_true")
    parser.add_argument("--summarize-at", type=int, default=None, metavar="TOKENS")
    parser.add_argument("--keep-messages", type=int, default=4)
    parser.add_argument("--subagent", action="store_true")
    parser.add_argument("--thinking-budget", type=int, default=None)
    args = parser.parse_args()
    prompt = os.environ.get("HARNESS_PROMPT") or sys.stdin.read()
    endpoint = {
        "model": args.model,
        "base_url": os.environ["ANTHROPIC_BASE_URL"],
        "api_key": os.environ["ANTHROPIC_API_KEY"],
        "max_tokens": 4096,
    }
    thinking = {"type": "enabled", "budget_tokens": args.thinking_budget}
    model = ChatAnthropic(**endpoint, thinking=thinking if args.thinking_budget else None)
    client = MultiServerMCPClient(connections(os.environ["HARNESS_MCP_CONFIG"], args.mcp_timeout))
    async with contextlib.AsyncExitStack() as stack:
        tools: list[BaseTool] = []
        if args.shared_session:
            for name in client.connections:
                session = await stack.enter_async_context(client.session(name))
                tools += await load_mcp_tools(session)
        else:
            tools = await client.get_tools()
        middleware = []
        if args.summarize_at is not None:
            middleware.append(
                SummarizationMiddleware(
                    model,
                    trigger=("tokens", args.summarize_at),
                    keep=("messages", args.keep_messages),
                )
            )
        if args.subagent:
            sub = create_agent(model, tools=tools, system_prompt="[agent:sub] You review chats.")

            @tool
            async def delegate(task: str) -> str:
                """Hand a task to the review subagent and return its answer."""
                state = await sub.ainvoke({"messages": [{"role": "user", "content": task}]})
                return str(state["messages"][-1].content)

            tools = [*tools, delegate]
        agent = create_agent(
            model,
            tools=tools,
            system_prompt="[agent:main] You are an operations assistant.",
            middleware=middleware,
        )
        state = await agent.ainvoke({"messages": [{"role": "user", "content": prompt}]})
    answer = state["messages"][-1]
    print(answer.text if hasattr(answer, "text") else answer.content)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
