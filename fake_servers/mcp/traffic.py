"""Fake ``traffic`` MCP server: ``traffic_status(route)`` with plausible, deterministic
travel times and incidents per route."""

from __future__ import annotations

import json
from typing import Any, Final

from mcp_types import CallToolResult

from fake_servers.mcp._base import ServerEnv
from fake_servers.mcp._results import digest, text_result

__all__ = ["PRESET", "register"]

_LEVELS = ("free-flowing", "light", "moderate", "heavy", "standstill")
_INCIDENTS = ("roadworks", "accident", "broken-down vehicle", "lane closure", "event traffic")


PRESET: Final[dict[str, dict[str, Any]]] = {
    "traffic_status": {
        "description": "Current traffic on a named route: level, travel time, delay and incidents.",
        "input_schema": {
            "properties": {"route": {"title": "Route", "type": "string"}},
            "required": ["route"],
            "type": "object",
            "title": "traffic_statusArguments",
        },
    },
}


def _traffic_status(arguments: dict[str, Any], caller: str | None) -> CallToolResult:
    route = arguments["route"]
    d = digest("traffic", route)
    level = d[0] % len(_LEVELS)
    base = d[1] % 40 + 10
    delay = level * (d[2] % 6 + 1)
    incidents = [
        {"type": _INCIDENTS[d[4 + i] % len(_INCIDENTS)], "km": round(d[8 + i] / 10, 1)}
        for i in range(level // 2)
    ]
    status = {
        "route": route,
        "level": _LEVELS[level],
        "travel_time_min": base + delay,
        "delay_min": delay,
        "incidents": incidents,
    }
    return text_result(json.dumps(status), structured=status)


def register(env: ServerEnv) -> None:
    env.preset(PRESET, {"traffic_status": _traffic_status})


if __name__ == "__main__":
    from fake_servers.mcp.cli import run_module

    run_module("traffic")
