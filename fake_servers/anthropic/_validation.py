"""Request validation with the real API's status, error type and message texts.

Known texts (REFERENCE.md) are reproduced exactly. For missing or ill-typed fields the real API
answers pydantic-style ``<dotted.path>: <pydantic message>`` texts (``max_tokens: Field
required``); the fake imitates them for the fields it checks:

- ``X: Field required``; ``X: Input should be a valid string|integer|boolean|list|dictionary``
- ``max_tokens: Input should be greater than or equal to 1``
- ``messages.N.role: Input should be 'user' or 'assistant'``
- ``messages.N.content.K: Input tag 'T' found using 'type' does not match any of the expected
  tags: ...`` and ``Unable to extract tag using discriminator 'type'``

Only the first error is reported, checking fields in the order model, max_tokens, messages
(structure), stream, system, tools, metadata, then the conversation rules: first role, empty
content, empty/whitespace text blocks, tool_use/tool_result pairing. Consecutive messages with
the same role are merged before the pairing rules (the real API's documented behaviour). Unknown
top-level fields are accepted (newer SDKs send fields this fake does not model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fake_servers.anthropic._errors import ApiError

__all__ = ["Block", "ParsedRequest", "compact_json", "validate_request"]

_BLOCK_TYPES = (
    "text",
    "image",
    "document",
    "search_result",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "web_search_tool_result",
)
_EXPECTED_TAGS = ", ".join(f"'{name}'" for name in _BLOCK_TYPES)
_KNOWN_BLOCK_TYPES = frozenset(_BLOCK_TYPES)
# Blocks allowed inside a tool_result's content list.
_INNER_TYPES = ("text", "image", "search_result", "document")
_EXPECTED_INNER_TAGS = ", ".join(f"'{name}'" for name in _INNER_TYPES)
_INNER_BLOCK_TYPES = frozenset(_INNER_TYPES)

_TOOL_RESULT_MISSING = (
    "messages.{n}: `tool_use` ids were found without `tool_result` blocks immediately after: "
    "{ids}. Each `tool_use` block must have a corresponding `tool_result` block in the next "
    "message."
)
_TOOL_RESULT_UNEXPECTED = (
    "messages.{n}.content.{k}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. "
    "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
)


@dataclass(slots=True)
class Block:
    """One content block with the position it had in the request."""

    message_index: int
    block_index: int
    data: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.data["type"])


@dataclass(slots=True)
class Message:
    """A (possibly merged) message: role and blocks in request order."""

    role: str
    blocks: list[Block] = field(default_factory=list)


@dataclass(slots=True)
class ParsedRequest:
    """A validated request body, with string content normalised to text blocks."""

    body: dict[str, Any]
    model: str
    messages: list[Message]
    message_count: int
    stream: bool
    system_text: str
    content_chars: int
    """Characters of all message blocks, as the token approximation counts them."""


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def _where(loc: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _require_str(obj: dict[str, Any], key: str, loc: tuple[object, ...]) -> None:
    # Paths are built only on error: formatting them for every block is a measurable cost.
    value = obj.get(key)
    if isinstance(value, str):
        return
    if key not in obj:
        raise _bad(f"{_where((*loc, key))}: Field required")
    raise _bad(f"{_where((*loc, key))}: Input should be a valid string")


def _check_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    ):
        raise _bad(f"{name}: Input should be a valid integer")
    if value < 1:
        raise _bad(f"{name}: Input should be greater than or equal to 1")


def _tag_error(loc: tuple[object, ...], kind: str, expected: str) -> ApiError:
    return _bad(
        f"{_where(loc)}: Input tag '{kind}' found using 'type' does not match any of the "
        f"expected tags: {expected}"
    )


# One encoder: json.dumps with options builds a new encoder per call (a measurable cost).
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def compact_json(value: object) -> str:
    """Compact JSON, as used by the token approximation."""
    return _COMPACT.encode(value)


def _check_block(
    block: object, loc: tuple[object, ...], allowed: frozenset[str] = _KNOWN_BLOCK_TYPES
) -> int:
    """Check one content block; return its size in characters for the token approximation."""
    if not isinstance(block, dict):
        raise _bad(f"{_where(loc)}: Input should be a valid dictionary")
    kind = block.get("type")
    if not isinstance(kind, str):
        raise _bad(f"{_where(loc)}: Unable to extract tag using discriminator 'type'")
    if kind not in allowed:
        expected = _EXPECTED_TAGS if allowed is _KNOWN_BLOCK_TYPES else _EXPECTED_INNER_TAGS
        raise _tag_error(loc, kind, expected)
    if kind == "text":
        _require_str(block, "text", loc)
        return len(block["text"])
    if kind == "tool_use":
        _require_str(block, "id", loc)
        _require_str(block, "name", loc)
        if "input" not in block:
            raise _bad(f"{_where(loc)}.input: Field required")
        if not isinstance(block["input"], dict):
            raise _bad(f"{_where(loc)}.input: Input should be a valid dictionary")
        return len(block["name"]) + len(compact_json(block["input"]))
    if kind == "tool_result":
        _require_str(block, "tool_use_id", loc)
        content = block.get("content")
        chars = 0
        if isinstance(content, list):
            for index, inner in enumerate(content):
                chars += _check_block(inner, (*loc, "content", index), _INNER_BLOCK_TYPES)
        elif isinstance(content, str):
            chars = len(content)
        elif content is not None:
            raise _bad(f"{_where(loc)}.content: Input should be a valid list")
        is_error = block.get("is_error")
        if is_error is not None and not isinstance(is_error, bool):
            raise _bad(f"{_where(loc)}.is_error: Input should be a valid boolean")
        return chars
    return len(compact_json(block))


def _system_text(system: object) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise _bad("system: Input should be a valid string")
    parts = []
    for index, block in enumerate(system):
        _check_block(block, ("system", index))
        if block["type"] != "text":
            raise _bad(f"system.{index}.type: Input should be 'text'")
        parts.append(block["text"])
    return "\n".join(parts)


_ROLES = ("user", "assistant")


def _message_error(n: int, message: object) -> None:
    where = f"messages.{n}"
    if not isinstance(message, dict):
        raise _bad(f"{where}: Input should be a valid dictionary")
    if "role" not in message:
        raise _bad(f"{where}.role: Field required")
    raise _bad(f"{where}.role: Input should be 'user' or 'assistant'")


def _parse_messages(raw: object) -> tuple[list[Message], int]:
    if not isinstance(raw, list):
        raise _bad("messages: Input should be a valid list")
    if not raw:
        raise _bad("messages: at least one message is required")
    parsed: list[Message] = []
    chars = 0
    for n, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            _message_error(n, message)
        assert isinstance(message, dict)
        role = message["role"]
        content = message.get("content")
        if isinstance(content, str):
            blocks = [Block(n, 0, {"type": "text", "text": content})] if content else []
            chars += len(content)
        elif isinstance(content, list):
            blocks = []
            for k, block in enumerate(content):
                chars += _check_block(block, ("messages", n, "content", k))
                blocks.append(Block(n, k, block))
        elif "content" not in message:
            raise _bad(f"messages.{n}.content: Field required")
        else:
            raise _bad(f"messages.{n}.content: Input should be a valid list")
        parsed.append(Message(role, blocks))
    return parsed, chars


def _check_conversation(messages: list[Message]) -> None:
    if messages[0].role != "user":
        raise _bad('messages: first message must use the "user" role')
    last = len(messages) - 1
    for n, message in enumerate(messages):
        if not message.blocks and not (n == last and message.role == "assistant"):
            raise _bad(
                f"messages.{n}: all messages must have non-empty content except for the "
                "optional final assistant message"
            )
    for message in messages:
        for block in message.blocks:
            if block.data["type"] == "text":
                text = block.data["text"]
                if not text:
                    raise _bad("messages: text content blocks must be non-empty")
                if text.isspace():
                    raise _bad("messages: text content blocks must contain non-whitespace text")


def _merge(messages: list[Message]) -> list[Message]:
    merged: list[Message] = []
    for message in messages:
        if merged and merged[-1].role == message.role:
            merged[-1].blocks.extend(message.blocks)
        else:
            merged.append(Message(message.role, list(message.blocks)))
    return merged


def _check_tool_pairing(merged: list[Message]) -> None:
    for g, message in enumerate(merged):
        if message.role == "user":
            allowed: set[str] | None = None
            for block in message.blocks:
                if block.data["type"] != "tool_result":
                    continue
                if allowed is None:
                    previous = merged[g - 1].blocks if g > 0 else []
                    allowed = {b.data["id"] for b in previous if b.data["type"] == "tool_use"}
                if block.data["tool_use_id"] not in allowed:
                    raise _bad(
                        _TOOL_RESULT_UNEXPECTED.format(
                            n=block.message_index, k=block.block_index, id=block.data["tool_use_id"]
                        )
                    )
            continue
        uses = [b for b in message.blocks if b.data["type"] == "tool_use"]
        if not uses:
            continue
        answered: set[str] = set()
        if g + 1 < len(merged):
            # Only the leading run of tool_result blocks answers: they must come first.
            for block in merged[g + 1].blocks:
                if block.data["type"] != "tool_result":
                    break
                answered.add(block.data["tool_use_id"])
        missing = [b for b in uses if b.data["id"] not in answered]
        if missing:
            ids = ", ".join(b.data["id"] for b in missing)
            raise _bad(_TOOL_RESULT_MISSING.format(n=missing[0].message_index, ids=ids))


def validate_request(body: object, *, count_tokens: bool = False) -> ParsedRequest:
    """Validate a Messages (or count_tokens) request body; raise ``ApiError`` like the real API."""
    if not isinstance(body, dict):
        raise _bad("Input should be a valid dictionary")
    _require_str(body, "model", ())
    model: str = body["model"]
    if not count_tokens:
        if "max_tokens" not in body:
            raise _bad("max_tokens: Field required")
        _check_int(body["max_tokens"], "max_tokens")
    if "messages" not in body:
        raise _bad("messages: Field required")
    messages, content_chars = _parse_messages(body["messages"])
    stream = body.get("stream", False)
    if count_tokens:
        stream = False
    elif not isinstance(stream, bool):
        raise _bad("stream: Input should be a valid boolean")
    system_text = _system_text(body.get("system"))
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise _bad("tools: Input should be a valid list")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _bad("metadata: Input should be a valid dictionary")
        user_id = metadata.get("user_id")
        if user_id is not None and not isinstance(user_id, str):
            raise _bad("metadata.user_id: Input should be a valid string")
    _check_conversation(messages)
    merged = _merge(messages)
    _check_tool_pairing(merged)
    return ParsedRequest(
        body=body,
        model=model,
        messages=merged,
        message_count=len(messages),
        stream=stream,
        system_text=system_text,
        content_chars=content_chars,
    )
