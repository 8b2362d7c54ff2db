"""Server-side context management (``context_management.edits``): the API clearing old tool
results and thinking blocks before the model sees the prompt.

Two strategies, with the real API's parameters and defaults:

- ``clear_tool_uses_20250919``: when ``trigger`` holds (``input_tokens`` above ``value``,
  default 100000, or more than ``value`` ``tool_uses``), the tool results of all but the last
  ``keep`` tool uses (default 3) are replaced by a placeholder, oldest first, skipping
  ``exclude_tools``; ``clear_tool_inputs`` (true or a list of names) also empties their inputs.
  With ``clear_at_least`` nothing is cleared unless that many input tokens would go.
- ``clear_thinking_20251015``: thinking blocks of all but the last ``keep`` assistant turns
  that think (``{type: thinking_turns, value: N}``, default 1; ``"all"`` keeps every one).

The edits change what the scripted model sees (conditions, echoes) and the counted
``input_tokens``, never the client's own history. What was cleared goes to the response's
``context_management.applied_edits`` (``cleared_tool_uses`` / ``cleared_thinking_turns`` and
``cleared_input_tokens``) and, with the tool_use ids, to the journal. A ``context_edit`` fault
makes the edits misbehave: ``skip`` applies none, ``clear_all`` clears everything clearable.
The placeholder text of a cleared result is the fake's own (the real one is not published).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fake_servers.anthropic._tokens import block_chars, ceil_quarter, count_input_tokens
from fake_servers.anthropic._validation import Block, ParsedRequest

__all__ = ["CLEARED_PLACEHOLDER", "EditOutcome", "apply_edits"]

CLEARED_PLACEHOLDER = "[tool result cleared by context management]"
_DEFAULT_TRIGGER_TOKENS = 100_000
_DEFAULT_TRIGGER = {"type": "input_tokens", "value": _DEFAULT_TRIGGER_TOKENS}
_DEFAULT_KEEP_TOOL_USES = 3


@dataclass(slots=True)
class EditOutcome:
    """What the edits did: the response's ``applied_edits`` and the journal's detail."""

    applied: list[dict[str, Any]] = field(default_factory=list)
    cleared_tool_use_ids: list[str] = field(default_factory=list)
    cleared_thinking_blocks: int = 0


def _value(spec: object, default: int) -> int:
    if isinstance(spec, dict) and isinstance(spec.get("value"), int):
        return int(spec["value"])
    return default


def _tool_pairs(request: ParsedRequest) -> list[tuple[Block, list[Block]]]:
    """Each tool_use block with the tool_result blocks answering it, oldest first."""
    results: dict[str, list[Block]] = {}
    for message in request.messages:
        if message.role == "user":
            for block in message.blocks:
                if block.data["type"] == "tool_result":
                    results.setdefault(block.data["tool_use_id"], []).append(block)
    return [
        (block, results.get(block.data["id"], []))
        for message in request.messages
        if message.role == "assistant"
        for block in message.blocks
        if block.data["type"] == "tool_use"
    ]


def _clear_tool_uses(
    request: ParsedRequest, edit: dict[str, Any], clear_all: bool, outcome: EditOutcome
) -> None:
    pairs = _tool_pairs(request)
    if not clear_all:
        trigger = edit.get("trigger") or _DEFAULT_TRIGGER
        limit = _value(trigger, _DEFAULT_TRIGGER_TOKENS)
        if trigger.get("type") == "tool_uses":
            if len(pairs) <= limit:
                return
        elif count_input_tokens(request) <= limit:
            return
    keep = 0 if clear_all else _value(edit.get("keep"), _DEFAULT_KEEP_TOOL_USES)
    excluded = set(edit.get("exclude_tools") or [])
    inputs = edit.get("clear_tool_inputs") or False
    candidates = pairs[: max(len(pairs) - keep, 0)]
    plan: list[tuple[Block, dict[str, Any]]] = []
    chars = 0
    for use, results in candidates:
        name = use.data["name"]
        if name in excluded:
            continue
        for result in results:
            cleared = dict(result.data, content=CLEARED_PLACEHOLDER)
            chars += block_chars(result.data) - block_chars(cleared)
            plan.append((result, cleared))
        if inputs is True or (isinstance(inputs, list) and name in inputs):
            emptied = dict(use.data, input={})
            chars += block_chars(use.data) - block_chars(emptied)
            plan.append((use, emptied))
    ids = list(
        dict.fromkeys(use.data["id"] for use, _ in candidates if use.data["name"] not in excluded)
    )
    tokens = ceil_quarter(chars) if chars > 0 else 0
    at_least = _value(edit.get("clear_at_least"), 0)
    if not ids or (not clear_all and tokens < at_least):
        return
    for block, data in plan:
        block.data = data
    request.content_chars -= chars
    outcome.cleared_tool_use_ids.extend(ids)
    outcome.applied.append(
        {
            "type": "clear_tool_uses_20250919",
            "cleared_tool_uses": len(ids),
            "cleared_input_tokens": tokens,
        }
    )


def _clear_thinking(
    request: ParsedRequest, edit: dict[str, Any], clear_all: bool, outcome: EditOutcome
) -> None:
    keep_spec = edit.get("keep", {"type": "thinking_turns", "value": 1})
    if not clear_all and (
        keep_spec == "all" or (isinstance(keep_spec, dict) and keep_spec.get("type") == "all")
    ):
        return
    keep = 1 if clear_all else _value(keep_spec, 1)
    thinking_turns = [
        message
        for message in request.messages
        if message.role == "assistant"
        and any(b.data["type"] in ("thinking", "redacted_thinking") for b in message.blocks)
    ]
    older = thinking_turns[: max(len(thinking_turns) - keep, 0)]
    if not older:
        return
    chars = 0
    blocks = 0
    for message in older:
        kept = []
        for block in message.blocks:
            if block.data["type"] in ("thinking", "redacted_thinking"):
                chars += block_chars(block.data)
                blocks += 1
            else:
                kept.append(block)
        message.blocks = kept
    request.content_chars -= chars
    outcome.cleared_thinking_blocks += blocks
    outcome.applied.append(
        {
            "type": "clear_thinking_20251015",
            "cleared_thinking_turns": len(older),
            "cleared_input_tokens": ceil_quarter(chars) if chars else 0,
        }
    )


def apply_edits(request: ParsedRequest, mode: str | None = None) -> EditOutcome | None:
    """Apply the request's context-management edits to its parsed conversation in place.

    ``mode`` is a ``context_edit`` fault's (``skip`` / ``clear_all``). ``None`` when the
    request asks for no edits.
    """
    config = request.body.get("context_management")
    if not isinstance(config, dict) or not config.get("edits"):
        return None
    outcome = EditOutcome()
    if mode == "skip":
        return outcome
    for edit in config["edits"]:
        kind = edit.get("type")
        if kind == "clear_tool_uses_20250919":
            _clear_tool_uses(request, edit, mode == "clear_all", outcome)
        elif kind == "clear_thinking_20251015":
            _clear_thinking(request, edit, mode == "clear_all", outcome)
    return outcome
