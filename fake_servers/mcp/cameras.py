"""Fake ``cameras`` MCP server (a Frigate NVR): ``frigate_events(camera, since)`` and
``frigate_snapshot(camera)`` (a small generated PNG as MCP image content, no network)."""

from __future__ import annotations

import json
from typing import Any, Final

from mcp_types import CallToolResult, TextContent

from fake_servers.mcp._base import ServerEnv
from fake_servers.mcp._results import digest, image_content, text_result
from fake_servers.mcp._script import ImageSpec

__all__ = ["PRESET", "register"]

_LABELS = ("person", "car", "cat", "dog", "bicycle", "package")


PRESET: Final[dict[str, dict[str, Any]]] = {
    "frigate_events": {
        "description": "Detection events of a camera (optionally only those after ``since``, "
        "ISO 8601).",
        "input_schema": {
            "properties": {
                "camera": {"title": "Camera", "type": "string"},
                "since": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "default": None,
                    "title": "Since",
                },
            },
            "required": ["camera"],
            "type": "object",
            "title": "frigate_eventsArguments",
        },
    },
    "frigate_snapshot": {
        "description": "The latest snapshot of a camera, as a PNG image.",
        "input_schema": {
            "properties": {"camera": {"title": "Camera", "type": "string"}},
            "required": ["camera"],
            "type": "object",
            "title": "frigate_snapshotArguments",
        },
    },
}


def _frigate_events(arguments: dict[str, Any], caller: str | None) -> CallToolResult:
    camera, since = arguments["camera"], arguments.get("since")
    d = digest("frigate", camera, since)
    events = [
        {
            "id": f"{1764230000 + d[i] * 97 + i * 613}.{d[i + 1] % 1000:03d}-{d[i + 2]:02x}",
            "camera": camera,
            "label": _LABELS[d[i] % len(_LABELS)],
            "score": round(0.6 + (d[i + 3] % 40) / 100, 2),
            "start_time": f"2026-11-27T{6 + i:02d}:{d[i + 4] % 60:02d}:00Z",
        }
        for i in range(d[0] % 4 + 1)
    ]
    listing = {"camera": camera, "since": since, "events": events}
    return text_result(json.dumps(listing), structured=listing)


def _frigate_snapshot(arguments: dict[str, Any], caller: str | None) -> CallToolResult:
    camera = arguments["camera"]
    return CallToolResult(
        content=[
            TextContent(type="text", text=f"snapshot of {camera}"),
            image_content(ImageSpec(seed_text=camera)),
        ]
    )


def register(env: ServerEnv) -> None:
    env.preset(PRESET, {"frigate_events": _frigate_events, "frigate_snapshot": _frigate_snapshot})


if __name__ == "__main__":
    from fake_servers.mcp.cli import run_module

    run_module("cameras")
