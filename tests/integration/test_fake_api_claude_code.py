"""The real Claude Code CLI against ``harness fake-api serve``: a multi-turn MCP tool loop with
extended thinking, and no request of the client's refused.

The CLI ships inside the ``claude-agent-sdk`` wheel (``pip install -e '.[fidelity]'``); without
it the test is skipped with a line that says so. It runs with a throw-away HOME, no network
traffic besides the fake (``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1``) and a fake MCP ssh
server over stdio.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SCRIPT = """\
default_agent: cc
agents:
  cc:
    turns:
      - thinking: I will check host a with the ssh tool.
        text: Checking host a.
        tool_use: [{name: mcp__ssh__mem_ssh, input: {host: host-a, command: uptime}}]
      - when: {tool_result_for: mcp__ssh__mem_ssh}
        thinking: Host a answered; now host b.
        text: Now host b.
        tool_use: [{name: mcp__ssh__mem_ssh, input: {host: host-b, command: uptime}}]
      - when: {tool_result_for: mcp__ssh__mem_ssh}
        text: "Both hosts answered: {tool_results}"
"""


def claude_cli() -> Path:
    try:
        import claude_agent_sdk
    except ImportError:
        pytest.skip(
            "claude-agent-sdk is not installed (pip install -e '.[fidelity]'): the Claude Code "
            "CLI fidelity test needs the CLI bundled in that wheel"
        )
    cli = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    if not cli.is_file():
        pytest.skip(f"claude-agent-sdk has no bundled CLI at {cli}")
    return cli


async def test_claude_code_runs_a_tool_loop_without_a_single_400(tmp_path: Path) -> None:
    cli = claude_cli()
    (tmp_path / "script.yaml").write_text(SCRIPT)
    journal = tmp_path / "journal.jsonl"
    mcp = {
        "mcpServers": {
            "ssh": {"command": sys.executable, "args": ["-m", "harness", "fake-mcp", "ssh"]}
        }
    }
    (tmp_path / "mcp.json").write_text(json.dumps(mcp))
    home = tmp_path / "home"
    home.mkdir()
    serve = [sys.executable, "-m", "harness", "fake-api", "serve"]
    serve += ["--script", str(tmp_path / "script.yaml"), "--journal", str(journal)]
    async with await anyio.open_process(serve, stderr=subprocess.PIPE) as server:
        try:
            assert server.stdout is not None
            with anyio.fail_after(30):
                line = await BufferedByteReceiveStream(server.stdout).receive_until(b"\n", 1000)
            url = line.decode().removeprefix("listening on ")
            env = {
                key: value
                for key, value in os.environ.items()
                if not key.startswith(("ANTHROPIC_", "CLAUDE_"))
            }
            env |= {
                "HOME": str(home),
                "ANTHROPIC_BASE_URL": url,
                "ANTHROPIC_API_KEY": "sk-ant-fidelity-test",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            }
            command = [str(cli), "-p", "check host-a then host-b", "--mcp-config"]
            command += [str(tmp_path / "mcp.json"), "--model", "claude-sonnet-4-6"]
            command += ["--allowedTools", "mcp__ssh__mem_ssh", "--output-format", "text"]
            with anyio.fail_after(180):
                result = await anyio.run_process(
                    command, env=env, cwd=tmp_path, check=False, stdin=subprocess.DEVNULL
                )
        finally:
            server.send_signal(signal.SIGINT)
            with anyio.fail_after(15):
                await server.wait()
    output = result.stdout.decode()
    assert result.returncode == 0, (output, result.stderr.decode()[-2000:])
    assert "Both hosts answered:" in output
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    refused = [(r["seq"], r["status"], r["verdict"]) for r in records if r["status"] != 200]
    assert refused == []
    answered = [r for r in records if r["endpoint"] == "/v1/messages"]
    assert [r["turn"] for r in answered] == [0, 1, 2]
    assert all(r["verdict"] == "ok" for r in answered)
    if answered[0]["request"].get("thinking"):
        # The client turned thinking on: the later requests carried the signed blocks back.
        kinds = [b["type"] for b in answered[1]["request"]["messages"][1]["blocks"]]
        assert kinds[0] == "thinking"
