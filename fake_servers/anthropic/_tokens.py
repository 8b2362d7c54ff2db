"""The one token approximation of the fake API.

``input_tokens = ceil(chars / 4)`` (at least 1) where ``chars`` adds up, over a validated
request: the system prompt text; 8 per message (role and framing); per content block the text
of ``text`` blocks, the name plus compact JSON input of ``tool_use`` blocks, the text of
``tool_result`` blocks (their non-text inner blocks as compact JSON), and the compact JSON of
any other block; plus the compact JSON of ``tools``. ``count_tokens`` and ``usage.input_tokens``
use this same function, so a scenario can predict when a conversation crosses a compaction
threshold. Output tokens are ``ceil(len(thinking + text + tool inputs as compact JSON) / 4)``,
at least 1, unless a turn sets ``output_tokens``.
"""

from __future__ import annotations

from typing import Any

from fake_servers.anthropic._validation import ParsedRequest, compact_json

__all__ = [
    "MESSAGE_OVERHEAD_CHARS",
    "block_chars",
    "ceil_quarter",
    "count_input_tokens",
    "count_output_tokens",
]

MESSAGE_OVERHEAD_CHARS = 8


def ceil_quarter(length: int) -> int:
    return max(1, (length + 3) // 4)


def block_chars(block: dict[str, Any]) -> int:
    """Characters of one content block, as validation counts them for ``input_tokens``."""
    kind = block.get("type")
    if kind == "text":
        return len(str(block.get("text", "")))
    if kind == "tool_use":
        return len(str(block.get("name", ""))) + len(compact_json(block.get("input", {})))
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            return len(content)
        if isinstance(content, list):
            return sum(block_chars(inner) for inner in content if isinstance(inner, dict))
        return 0
    return len(compact_json(block))


def count_input_tokens(request: ParsedRequest) -> int:
    """Approximate input tokens of a validated request (block sizes come from validation)."""
    chars = len(request.system_text) + MESSAGE_OVERHEAD_CHARS * request.message_count
    chars += request.content_chars
    tools = request.body.get("tools")
    if tools:
        chars += len(compact_json(tools))
    return ceil_quarter(chars)


def count_output_tokens(content: list[dict[str, Any]]) -> int:
    """Approximate output tokens of response content blocks."""
    length = 0
    for block in content:
        kind = block["type"]
        if kind == "text":
            length += len(block["text"])
        elif kind == "thinking":
            length += len(block["thinking"])
        elif kind == "redacted_thinking":
            length += len(block["data"])
        else:
            length += len(compact_json(block["input"]))
    return ceil_quarter(length)
