"""The one token approximation of the fake API.

``input_tokens = ceil(len(J) / 4)`` where ``J`` is the compact JSON (``separators=(",", ":")``,
``ensure_ascii=False``, keys in request order) of ``{"system": ..., "messages": ..., "tools":
...}`` taken from the request body (absent fields are ``null``). ``count_tokens`` and the
``usage.input_tokens`` of a response use the same function, so a scenario can predict when a
conversation crosses a compaction threshold. Output tokens are ``ceil(len(text + tool inputs as
JSON) / 4)``, at least 1, unless a turn sets ``output_tokens``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["count_input_tokens", "count_output_tokens"]


def _ceil_quarter(length: int) -> int:
    return (length + 3) // 4


def count_input_tokens(body: dict[str, Any]) -> int:
    """Approximate input tokens of a validated request body."""
    payload = {
        "system": body.get("system"),
        "messages": body.get("messages"),
        "tools": body.get("tools"),
    }
    return _ceil_quarter(len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False)))


def count_output_tokens(content: list[dict[str, Any]]) -> int:
    """Approximate output tokens of response content blocks."""
    length = 0
    for block in content:
        if block["type"] == "text":
            length += len(block["text"])
        else:
            length += len(json.dumps(block["input"], separators=(",", ":"), ensure_ascii=False))
    return max(1, _ceil_quarter(length))
