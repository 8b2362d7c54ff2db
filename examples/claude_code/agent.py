"""Claude Code (the real CLI) as an external agent process.

Follows the external-process contract: ``ANTHROPIC_BASE_URL`` / ``ANTHROPIC_API_KEY``,
``HARNESS_MCP_CONFIG``, ``HARNESS_PROMPT`` (or stdin) in; the answer on stdout; Claude Code's
exit status is this process's. It runs::

    claude -p PROMPT --mcp-config CONFIG --allowedTools mcp__<server> ... --output-format text

with a throw-away ``HOME`` (no user settings, no session history leaks in or out) and
``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` (no traffic besides the API it is pointed at).
Every server in the config is allowed (``mcp__<name>`` allows all of that server's tools), plus
the tools named in ``CLAUDE_EXTRA_ALLOWED_TOOLS`` (e.g. ``Agent`` for subagents).
The CLI is ``$CLAUDE_CLI`` or the one bundled in the ``claude-agent-sdk`` wheel. Extra arguments
after ``--`` go to the CLI (e.g. ``--model``); Claude Code's own knobs are environment variables
(``MCP_TOOL_TIMEOUT`` in ms, ``CLAUDE_CODE_AUTO_COMPACT_WINDOW``, ...).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def claude_cli() -> str:
    if os.environ.get("CLAUDE_CLI"):
        return os.environ["CLAUDE_CLI"]
    try:
        import claude_agent_sdk  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        sys.exit(
            "error: Claude Code CLI not found: pip install claude-agent-sdk "
            "(it bundles the CLI) or set CLAUDE_CLI"
        )
    cli = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    if not cli.is_file():
        sys.exit(f"error: claude-agent-sdk has no bundled CLI at {cli}; set CLAUDE_CLI")
    return str(cli)


def main() -> int:
    extra = sys.argv[1:]
    if extra[:1] == ["--"]:
        extra = extra[1:]
    config = os.environ["HARNESS_MCP_CONFIG"]
    prompt = os.environ.get("HARNESS_PROMPT") or sys.stdin.read()
    servers = json.loads(Path(config).read_text())["mcpServers"]
    command = [claude_cli(), "-p", prompt, "--mcp-config", config, "--output-format", "text"]
    allowed = [f"mcp__{name}" for name in servers]
    allowed += os.environ.get("CLAUDE_EXTRA_ALLOWED_TOOLS", "").split()
    command += ["--allowedTools", *allowed, *extra]
    home = tempfile.mkdtemp(prefix="claude-home-")
    try:
        env = {**os.environ, "HOME": home, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
        return subprocess.run(command, env=env, cwd=home, stdin=subprocess.DEVNULL).returncode
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
