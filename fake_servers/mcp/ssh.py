"""Fake ``ssh`` MCP server: ``mem_ssh(host, command)`` runs nothing and answers with the
scripted output, or a plausible one derived from the host and command."""

from __future__ import annotations

from typing import Any, Final

from mcp_types import CallToolResult

from fake_servers.mcp._base import ServerEnv
from fake_servers.mcp._results import digest, text_result

__all__ = ["PRESET", "plausible_output", "register"]


def plausible_output(host: str, command: str) -> str:
    """Deterministic output that looks like ``command`` ran on ``host``."""
    d = digest("ssh", host, command)
    verb = command.strip().split(" ", 1)[0] if command.strip() else ""
    if verb == "uptime":
        return (
            f" 0{d[0] % 10}:{d[1] % 60:02d}:{d[2] % 60:02d} up {d[3] % 200 + 1} days, "
            f"{d[4] % 24}:{d[5] % 60:02d},  {d[6] % 4 + 1} users,  load average: "
            f"{d[7] % 300 / 100:.2f}, {d[8] % 300 / 100:.2f}, {d[9] % 300 / 100:.2f}"
        )
    if verb == "df":
        used = d[0] % 90 + 5
        size = (d[1] % 8 + 1) * 64
        return (
            "Filesystem      Size  Used Avail Use% Mounted on\n"
            f"/dev/sda1       {size}G  {size * used // 100}G  "
            f"{size - size * used // 100}G  {used}% /"
        )
    if verb == "free":
        total = (d[0] % 4 + 1) * 8192
        used = total * (d[1] % 80 + 10) // 100
        return (
            "               total        used        free      shared  buff/cache   available\n"
            f"Mem:           {total}        {used}        {total - used}"
            f"         {d[2] % 512}        {d[3] % 4096}        {total - used}"
        )
    if verb == "systemctl":
        unit = command.split()[-1]
        state = "active (running)" if d[0] % 5 else "failed (Result: exit-code)"
        return f"● {unit}\n     Loaded: loaded (/etc/systemd/system/{unit})\n     Active: {state}"
    if verb == "hostname":
        return host
    return f"{host}: ran '{command}' (exit 0)"


PRESET: Final[dict[str, dict[str, Any]]] = {
    "mem_ssh": {
        "description": "Run a shell command on a home-lab host over SSH and return its output.",
        "input_schema": {
            "properties": {
                "host": {"title": "Host", "type": "string"},
                "command": {"title": "Command", "type": "string"},
            },
            "required": ["host", "command"],
            "type": "object",
            "title": "mem_sshArguments",
        },
    },
}


def _mem_ssh(arguments: dict[str, Any], caller: str | None) -> CallToolResult:
    return text_result(plausible_output(arguments["host"], arguments["command"]))


def register(env: ServerEnv) -> None:
    env.preset(PRESET, {"mem_ssh": _mem_ssh})


if __name__ == "__main__":
    from fake_servers.mcp.cli import run_module

    run_module("ssh")
