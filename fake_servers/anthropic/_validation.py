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
(structure), stream, system, tools, metadata, thinking, output_config, context_management, the
cache_control breakpoint count, then the conversation rules: first role, empty content,
empty/whitespace text blocks, tool_use/tool_result pairing, the extended-thinking rules.
Consecutive messages with the same role are merged before the pairing rules (the real API's
documented behaviour). Unknown top-level fields are accepted (newer SDKs send fields this fake
does not model), except the beta-gated ones below.

Texts seen from the real API and reproduced exactly (public error reports):

- ``tools.N.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'``
- ``tools.N.custom.input_schema: Field required`` and ``tools.N.custom.input_schema.type: Field
  required``; ``tools: Tool names must be unique.``
- ``A maximum of 4 blocks with cache_control may be provided. Found N.``
- ``context_management: Extra inputs are not permitted`` (without the
  ``context-management-2025-06-27`` beta)
- ``messages.N.content.0.type: Expected `thinking` or `redacted_thinking`, but found `X`. When
  `thinking` is enabled, a final `assistant` message must start with a thinking block ...``
- ``messages.N.content.K: When thinking is disabled, an `assistant` message in the final position
  cannot contain `thinking`. To use thinking blocks, enable `thinking` in your request.``
- ```max_tokens` must be greater than `thinking.budget_tokens`. Please consult ...``

Per-turn ``role: "system"`` messages are accepted only with a per-turn beta header
(``PER_TURN_BETAS``); which header the real API keys them on is not publicly documented, so the
fake accepts the one current clients send with them. Without it the role gets the usual
``messages.N.role`` error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from fake_servers.anthropic._errors import ApiError

__all__ = [
    "CONTEXT_MANAGEMENT_BETA",
    "PER_TURN_BETAS",
    "Block",
    "ParsedRequest",
    "compact_json",
    "validate_request",
]

CONTEXT_MANAGEMENT_BETA = "context-management-2025-06-27"
PER_TURN_BETAS = frozenset(
    {"per-turn-control-2026-07-01", "mid-conversation-output-config-2026-07-01"}
)
_NO_BETAS: frozenset[str] = frozenset()
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_TOOL_NAME_ERROR = "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'"
_MAX_CACHE_BREAKPOINTS = 4
_THINKING_TYPES = ("enabled", "disabled", "between_tools", "adaptive")
_THINKING_DISPLAYS = ("summarized", "omitted", "updates")
_EFFORTS = ("low", "medium", "high", "xhigh", "max")
_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
_THINKING_FIRST = (
    "messages.{n}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{kind}`. "
    "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you "
    "include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. "
    f"Please consult our documentation at {_THINKING_DOCS}"
)
_THINKING_DISABLED = (
    "messages.{n}.content.{k}: When thinking is disabled, an `assistant` message in the final "
    "position cannot contain `thinking`. To use thinking blocks, enable `thinking` in your request."
)

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
    thinking: str | None = None
    """``"enabled"`` or ``"adaptive"`` when the request turns thinking on, else ``None``."""
    thinking_display: str | None = None
    betas: frozenset[str] = _NO_BETAS
    cache_breakpoints: int = 0
    last_assistant: int | None = None
    """Request index of the last ``assistant`` message (its thinking blocks are checked)."""


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


def _system_message_text(n: int, message: dict[str, Any]) -> str:
    """The text of a per-turn ``role: "system"`` message (kept out of the turn sequence)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for k, block in enumerate(content):
            _check_block(block, ("messages", n, "content", k))
            if block["type"] == "text":
                parts.append(block["text"])
        return "\n".join(parts)
    if content is None and isinstance(message.get("output_config"), dict):
        return ""
    raise _bad(f"messages.{n}.content: Field required")


def _parse_messages(
    raw: object, betas: frozenset[str]
) -> tuple[list[Message], int, list[str], int | None]:
    """Messages (per-turn system messages set apart), content chars, system texts, last
    assistant index."""
    if not isinstance(raw, list):
        raise _bad("messages: Input should be a valid list")
    if not raw:
        raise _bad("messages: at least one message is required")
    parsed: list[Message] = []
    system_texts: list[str] = []
    chars = 0
    last_assistant = None
    for n, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            if (
                isinstance(message, dict)
                and message.get("role") == "system"
                and not betas.isdisjoint(PER_TURN_BETAS)
            ):
                system_texts.append(_system_message_text(n, message))
                continue
            _message_error(n, message)
        assert isinstance(message, dict)
        role = message["role"]
        if role == "assistant":
            last_assistant = n
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
    return parsed, chars, system_texts, last_assistant


def _check_tools(tools: object) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _bad("tools: Input should be a valid list")
    names: set[str] = set()
    duplicate = False
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _bad(f"tools.{index}: Input should be a valid dictionary")
        kind = tool.get("type")
        name = tool.get("name")
        if kind is None or kind == "custom":
            # Server tools (``web_search_20250305``, ``bash_20250124``...) have their own shapes.
            where = f"tools.{index}.custom"
            if not isinstance(name, str):
                problem = "Field required" if name is None else "Input should be a valid string"
                raise _bad(f"{where}.name: {problem}")
            if _TOOL_NAME.fullmatch(name) is None:
                raise _bad(f"{where}.name: {_TOOL_NAME_ERROR}")
            schema = tool.get("input_schema")
            if schema is None:
                raise _bad(f"{where}.input_schema: Field required")
            if not isinstance(schema, dict):
                raise _bad(f"{where}.input_schema: Input should be a valid dictionary")
            if "type" not in schema:
                raise _bad(f"{where}.input_schema.type: Field required")
        if isinstance(name, str):
            duplicate = duplicate or name in names
            names.add(name)
    if duplicate:
        raise _bad("tools: Tool names must be unique.")


def _check_thinking(thinking: object, max_tokens: object) -> tuple[str | None, str | None]:
    """(mode, display) of the ``thinking`` parameter; mode is None when thinking is off."""
    if thinking is None:
        return None, None
    if not isinstance(thinking, dict):
        raise _bad("thinking: Input should be a valid dictionary")
    kind = thinking.get("type")
    if not isinstance(kind, str):
        raise _bad("thinking: Unable to extract tag using discriminator 'type'")
    if kind not in _THINKING_TYPES:
        expected = ", ".join(f"'{name}'" for name in _THINKING_TYPES)
        raise _bad(
            f"thinking: Input tag '{kind}' found using 'type' does not match any of the "
            f"expected tags: {expected}"
        )
    if kind == "disabled":
        return None, None
    display = thinking.get("display")
    if display is not None and display not in _THINKING_DISPLAYS:
        raise _bad(f"thinking.{kind}.display: Input should be 'summarized', 'omitted' or 'updates'")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if budget is None:
            raise _bad("thinking.enabled.budget_tokens: Field required")
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise _bad("thinking.enabled.budget_tokens: Input should be a valid integer")
        if budget < 1024:
            raise _bad(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        if isinstance(max_tokens, int | float) and max_tokens <= budget:
            raise _bad(
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                f"documentation at {_THINKING_DOCS}#max-tokens-and-context-window-size"
            )
    return ("adaptive" if kind == "adaptive" else "enabled"), display


def _check_output_config(config: object) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        raise _bad("output_config: Input should be a valid dictionary")
    effort = config.get("effort")
    if effort is not None and effort not in _EFFORTS:
        raise _bad(
            "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
        )


def _check_context_management(config: object, betas: frozenset[str]) -> None:
    if config is None:
        return
    if CONTEXT_MANAGEMENT_BETA not in betas:
        raise _bad("context_management: Extra inputs are not permitted")
    if not isinstance(config, dict):
        raise _bad("context_management: Input should be a valid dictionary")
    edits = config.get("edits", [])
    if not isinstance(edits, list):
        raise _bad("context_management.edits: Input should be a valid list")
    for index, edit in enumerate(edits):
        if not isinstance(edit, dict) or not isinstance(edit.get("type"), str):
            raise _bad(
                f"context_management.edits.{index}: Unable to extract tag using "
                "discriminator 'type'"
            )


def _count_cache_controls(body: dict[str, Any]) -> int:
    """Blocks carrying ``cache_control`` in tools, system blocks and message content."""
    count = 0
    for key in ("tools", "system"):
        items = body.get(key)
        if isinstance(items, list):
            count += sum(1 for item in items if isinstance(item, dict) and "cache_control" in item)
    for message in body["messages"]:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for block in content:
            if "cache_control" in block:
                count += 1
            inner = block.get("content")
            if isinstance(inner, list):
                count += sum(1 for b in inner if isinstance(b, dict) and "cache_control" in b)
    return count


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


def _tool_loop_start(merged: list[Message]) -> Message | None:
    """The first assistant message of the turn a trailing tool_result set continues."""
    if len(merged) < 2 or merged[-1].role != "user":
        return None
    last = merged[-1].blocks
    if not last or last[0].data["type"] != "tool_result":
        return None
    start = None
    g = len(merged) - 2
    while g >= 0 and merged[g].role == "assistant":
        start = merged[g]
        user = merged[g - 1] if g > 0 else None
        if user is None or not user.blocks or user.blocks[0].data["type"] != "tool_result":
            break
        g -= 2
    return start


def _check_thinking_rules(merged: list[Message], thinking: str | None) -> None:
    if thinking is None:
        last = merged[-1]
        if last.role == "assistant":
            for block in last.blocks:
                if block.data["type"] in ("thinking", "redacted_thinking"):
                    raise _bad(
                        _THINKING_DISABLED.format(n=block.message_index, k=block.block_index)
                    )
        return
    start = _tool_loop_start(merged)
    if start is None or not start.blocks:
        return
    first = start.blocks[0]
    if first.data["type"] not in ("thinking", "redacted_thinking"):
        raise _bad(_THINKING_FIRST.format(n=first.message_index, kind=first.data["type"]))


def validate_request(
    body: object, *, count_tokens: bool = False, betas: frozenset[str] = _NO_BETAS
) -> ParsedRequest:
    """Validate a Messages (or count_tokens) request body; raise ``ApiError`` like the real API.

    ``betas`` are the request's ``anthropic-beta`` values (they gate some fields).
    """
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
    messages, content_chars, system_texts, last_assistant = _parse_messages(body["messages"], betas)
    stream = body.get("stream", False)
    if count_tokens:
        stream = False
    elif not isinstance(stream, bool):
        raise _bad("stream: Input should be a valid boolean")
    system_text = _system_text(body.get("system"))
    if system_texts:
        system_text = (
            "\n".join([system_text, *system_texts]) if system_text else "\n".join(system_texts)
        )
    _check_tools(body.get("tools"))
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _bad("metadata: Input should be a valid dictionary")
        user_id = metadata.get("user_id")
        if user_id is not None and not isinstance(user_id, str):
            raise _bad("metadata.user_id: Input should be a valid string")
    thinking, display = _check_thinking(body.get("thinking"), body.get("max_tokens"))
    _check_output_config(body.get("output_config"))
    _check_context_management(body.get("context_management"), betas)
    breakpoints = _count_cache_controls(body)
    if breakpoints > _MAX_CACHE_BREAKPOINTS:
        raise _bad(
            f"A maximum of {_MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {breakpoints}."
        )
    if not messages:
        raise _bad("messages: at least one message is required")
    _check_conversation(messages)
    merged = _merge(messages)
    _check_tool_pairing(merged)
    _check_thinking_rules(merged, thinking)
    return ParsedRequest(
        body=body,
        model=model,
        messages=merged,
        message_count=len(messages),
        stream=stream,
        system_text=system_text,
        content_chars=content_chars,
        thinking=thinking,
        thinking_display=display,
        betas=betas,
        cache_breakpoints=breakpoints,
        last_assistant=last_assistant,
    )
