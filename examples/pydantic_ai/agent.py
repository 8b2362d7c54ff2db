"""The pydantic-ai adapter as an external agent process (live mode).

Reads the external-process contract's environment (``ANTHROPIC_BASE_URL``, ``ANTHROPIC_API_KEY``,
``HARNESS_MCP_CONFIG``, ``HARNESS_PROMPT`` or stdin), builds the same context the harness hands an
in-process adapter (stdio / HTTP servers from the ``mcpServers`` file), runs one task through
``examples.pydantic_ai.adapter`` and prints the answer. Options: ``--agent NAME`` (routes the fake
API's script), ``--mcp-timeout SECONDS`` (the MCP client's call timeout), ``--model``.

    python -m examples.pydantic_ai.agent --mcp-timeout 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from anthropic import AsyncAnthropic

from examples.pydantic_ai.adapter import make_factory


def servers_from_config(path: str) -> dict[str, Any]:
    """``ServerParams``-shaped objects from an ``mcpServers`` JSON file."""
    config = json.loads(Path(path).read_text())
    servers: dict[str, Any] = {}
    for name, entry in config["mcpServers"].items():
        if "url" in entry:
            servers[name] = SimpleNamespace(name=name, transport="http", url=entry["url"])
        else:
            servers[name] = SimpleNamespace(
                name=name,
                transport="stdio",
                command=entry["command"],
                args=entry.get("args", []),
                # The server inherits our environment plus the file's entries, as desktop
                # clients do.
                env={**os.environ, **entry.get("env", {})},
            )
    return servers


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", default="main")
    parser.add_argument("--mcp-timeout", type=float, default=300.0)
    parser.add_argument("--model", default="claude-sonnet-4-6")
    args = parser.parse_args()
    prompt = os.environ.get("HARNESS_PROMPT") or sys.stdin.read()
    ctx = SimpleNamespace(
        client=AsyncAnthropic(
            base_url=os.environ["ANTHROPIC_BASE_URL"], api_key=os.environ["ANTHROPIC_API_KEY"]
        ),
        servers=servers_from_config(os.environ["HARNESS_MCP_CONFIG"]),
        model=args.model,
        seed=0,
    )
    runtime = await make_factory(mcp_timeout=args.mcp_timeout)(ctx)
    try:
        task = SimpleNamespace(
            agent=args.agent, prompt=prompt, context_id=None, scope=None, scheduled=False, at=0.0
        )
        print(await runtime.run(task))
    finally:
        await runtime.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
