"""``harness interpose`` in front of a third-party stdio MCP server from PyPI (``mcp-server-time``).

The server lives in its own virtualenv so its dependencies never touch ours. Set
``HARNESS_MCP_TIME_SERVER`` to its executable (default:
``/tmp/venv-mcp-time/bin/mcp-server-time``, made by ``python -m venv /tmp/venv-mcp-time &&
/tmp/venv-mcp-time/bin/pip install mcp-server-time``); without it the test is skipped.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client

pytestmark = pytest.mark.integration

SERVER = Path(os.environ.get("HARNESS_MCP_TIME_SERVER", "/tmp/venv-mcp-time/bin/mcp-server-time"))

PLAN = """
- {type: delay, seconds: 0.3, match: {tool: get_current_time, direction: downstream, nth: 1}}
- {type: drop, match: {tool: get_current_time, direction: upstream, nth: 2}}
- {type: kill, signal: SIGKILL, match: {tool: get_current_time, nth: 3}}
"""


@pytest.mark.skipif(not SERVER.exists(), reason=f"no mcp-server-time at {SERVER}")
async def test_faults_in_front_of_mcp_server_time(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    events = tmp_path / "faults.jsonl"
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            *("-m", "harness", "interpose", "--name", "time"),
            *("--plan", str(tmp_path / "plan.yaml"), "--events", str(events), "--"),
            *(str(SERVER), "--local-timezone", "UTC"),
        ],
    )
    outcomes: list[Any] = []
    with (tmp_path / "stderr.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert {"get_current_time", "convert_time"} <= tools
            for timeout in (10.0, 0.5, 10.0, 10.0):
                try:
                    result = await client.call_tool(
                        "get_current_time",
                        {"timezone": "Europe/Warsaw"},
                        read_timeout_seconds=timeout,
                    )
                    text = result.content[0].text  # type: ignore[union-attr]
                    outcomes.append(json.loads(text)["timezone"])
                except MCPError as exc:
                    outcomes.append(exc.error.code)
    assert outcomes == ["Europe/Warsaw", -32001, -32000, -32000]
    records = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(r["type"], r["tool"], r["target"]) for r in records] == [
        ("delay", "get_current_time", "time"),
        ("drop", "get_current_time", "time"),
        ("kill", "get_current_time", "time"),
    ]
