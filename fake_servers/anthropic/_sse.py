"""The SSE event sequence of a streamed answer, as the real API sends it.

``message_start`` → ``ping`` → per block ``content_block_start`` / ``content_block_delta``
(``thinking_delta`` then one ``signature_delta``, ``text_delta``, or ``input_json_delta`` with
``partial_json``) / ``content_block_stop`` → ``message_delta`` (stop_reason, cumulative usage,
``context_management`` when edits applied) → ``message_stop``. A ``redacted_thinking`` block
comes whole in its ``content_block_start``, without deltas.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["sse_error", "sse_events"]

_CHUNK = 16


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    data = {"type": "content_block_delta", "index": index, "delta": delta}
    return _event("content_block_delta", data)


def _chunks(text: str) -> list[str]:
    return [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]


def sse_events(message: dict[str, Any]) -> list[bytes]:
    """Encoded SSE events that stream ``message`` (a complete Messages API response)."""
    usage = message["usage"]
    start = dict(message, content=[], stop_reason=None, stop_sequence=None)
    start.pop("context_management", None)
    start["usage"] = dict(usage, output_tokens=1)
    events = [
        _event("message_start", {"type": "message_start", "message": start}),
        _event("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": part} for part in _chunks(block["text"])]
        elif kind == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": part} for part in _chunks(block["thinking"])
            ]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "redacted_thinking":
            opening, deltas = block, []
        else:
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            encoded = json.dumps(block["input"], separators=(",", ":"))
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in _chunks(encoded)]
        events.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
        )
        events.extend(_delta(index, d) for d in deltas)
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    final: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": usage,
    }
    if "context_management" in message:
        final["context_management"] = message["context_management"]
    events.append(_event("message_delta", final))
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


def sse_error(error_type: str, message: str) -> bytes:
    """An SSE ``error`` event, as the real API sends mid-stream (e.g. ``overloaded_error``)."""
    return _event("error", {"type": "error", "error": {"type": error_type, "message": message}})
