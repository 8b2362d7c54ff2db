"""The one token approximation of the fake API.

``input_tokens = ceil(chars / 4)`` (at least 1) where ``chars`` adds up, over a validated
request: the system prompt text; 8 per message (role and framing); per content block the text
of ``text`` blocks, the name plus compact JSON input of ``tool_use`` blocks, the text of
``tool_result`` blocks (their non-text inner blocks as compact JSON), and the compact JSON of
any other block; plus the compact JSON of ``tools``. ``count_tokens`` and ``usage.input_tokens``
use this same function, so a scenario can predict when a conversation crosses a compaction
threshold. Output tokens are ``ceil(len(text + tool inputs as compact JSON) / 4)``, at least 1,
unless a turn sets ``output_tokens``.
"""

from __future__ import annotations

from typing import Any

from fake_servers.anthropic._validation import ParsedRequest, compact_json

__all__ = ["MESSAGE_OVERHEAD_CHARS", "count_input_tokens", "count_output_tokens"]

MESSAGE_OVERHEAD_CHARS = 8


def _ceil_quarter(length: int) -> int:
    return max(1, (length + 3) // 4)


def count_input_tokens(request: ParsedRequest) -> int:
    """Approximate input tokens of a validated request (block sizes come from validation)."""
    chars = len(request.system_text) + MESSAGE_OVERHEAD_CHARS * request.message_count
    chars += request.content_chars
    tools = request.body.get("tools")
    if tools:
        chars += len(compact_json(tools))
    return _ceil_quarter(chars)


def count_output_tokens(content: list[dict[str, Any]]) -> int:
    """Approximate output tokens of response content blocks."""
    length = 0
    for block in content:
        if block["type"] == "text":
            length += len(block["text"])
        else:
            length += len(compact_json(block["input"]))
    return _ceil_quarter(length)
