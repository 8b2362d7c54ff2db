"""The reconnect policies over real stdio subprocesses, and no process left behind.

A's call hangs and times out while B's slow call is in flight on the same server process.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
import yaml

from fake_servers.mcp import stdio_parameters
from harness.runtime.host import MCPHostManager, ServerSpec, ToolCallOutcome

pytestmark = pytest.mark.integration


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        text = (task / "children").read_text().split()
        pids.update(int(p) for p in text)
    return pids


@pytest.fixture
def ssh_script(tmp_path: Path) -> Path:
    script = {
        "tools": {
            "mem_ssh": {
                "match": [
                    {"args": {"host": "stuck"}, "then": {"hang": True}},
                    {"args": {"host": "slow"}, "then": {"latency": 2.5, "result": {"text": "ok"}}},
                ]
            }
        }
    }
    path = tmp_path / "ssh.yaml"
    path.write_text(yaml.safe_dump(script))
    return path


async def _race(policy: str, script: Path) -> tuple[dict[str, ToolCallOutcome], MCPHostManager]:
    spec = ServerSpec("ssh", command=stdio_parameters("ssh", script=script), timeout=30)
    outcomes: dict[str, ToolCallOutcome] = {}
    async with MCPHostManager([spec], policy=policy) as host:  # type: ignore[arg-type]

        async def call(key: str, host_arg: str, timeout: float) -> None:
            args = {"host": host_arg, "command": "uptime"}
            outcomes[key] = await host.call_tool("ssh", "mem_ssh", args, timeout=timeout)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "B", "slow", 30.0)
            await host.events.wait_for("call_started", tool="mem_ssh")
            tg.start_soon(call, "A", "stuck", 1.0)
        assert host.live_connections("ssh")
    assert host.live_connections() == []
    return outcomes, host


async def test_naive_kills_the_live_call_and_reconnects_twice(ssh_script: Path) -> None:
    before = _children()
    outcomes, host = await _race("naive", ssh_script)
    assert outcomes["A"].error_type == "timeout"
    assert outcomes["B"].error_type == "connection_closed"
    performed = [e for e in host.events.of_kind("reconnect") if e.data["decision"] == "performed"]
    assert len(performed) == 2
    assert performed[0].data["in_flight"] >= 1
    assert _children() <= before


async def test_coordinated_lets_the_live_call_finish(ssh_script: Path) -> None:
    before = _children()
    outcomes, host = await _race("coordinated", ssh_script)
    assert not outcomes["B"].is_error
    assert outcomes["A"].error_type == "timeout"
    assert outcomes["A"].retried
    decisions = [e.data for e in host.events.of_kind("reconnect")]
    assert decisions[0]["decision"] == "deferred"
    assert all(d["in_flight"] == 0 for d in decisions if d["decision"] == "performed")
    assert _children() <= before
