"""Read what the scripted model needs from a validated conversation: conditions and echoes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fake_servers.anthropic._validation import ParsedRequest
from fake_servers.anthropic.script import Condition

__all__ = ["NO_RESULT", "ConversationView", "RoundResult"]

# ``{name}``, ``{tool_results.TOOL}`` and ``{tool_result[ID or N]}``; other braces stay as written.
_PLACEHOLDER = re.compile(
    r"\{(?:(?P<name>tool_results|tool_errors|tool_names|tool_result_count|last_user_text"
    r"|message_count|agent|turn)"
    r"|tool_results\.(?P<tool>[^{}\s]+)"
    r"|tool_result\[(?P<key>[^\]{}\s]+)\])\}"
)
NO_RESULT = "(no result)"


@dataclass(frozen=True, slots=True)
class RoundResult:
    """One tool_result of the round: the tool_use it answers (id, tool name, its position in
    the assistant turn that made it), its text and whether it is an error."""

    tool_use_id: str
    tool: str
    position: int | None
    text: str
    is_error: bool


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(
        str(inner["text"]) for inner in content if isinstance(inner, dict) and "text" in inner
    )


class ConversationView:
    """Lazily computed facts about one request's conversation."""

    def __init__(self, request: ParsedRequest, *, compaction_marker: str) -> None:
        self._request = request
        self._marker = compaction_marker

    @cached_property
    def round_results(self) -> list[RoundResult]:
        """Every tool_result since the last assistant turn, wherever it sits (one user message
        or several, before or after text), in request order, with the tool it answers (found
        in any assistant turn of the request)."""
        messages = self._request.messages
        last_assistant = max(
            (i for i, m in enumerate(messages) if m.role == "assistant"), default=-1
        )
        uses: dict[str, tuple[str, int]] = {}
        for message in messages[: last_assistant + 1]:
            position = 0
            for block in message.blocks:
                if block.data["type"] == "tool_use":
                    uses[str(block.data["id"])] = (str(block.data["name"]), position)
                    position += 1
        out = []
        for message in messages[last_assistant + 1 :]:
            for block in message.blocks:
                if block.data["type"] != "tool_result":
                    continue
                use_id = str(block.data["tool_use_id"])
                tool, at = uses.get(use_id, ("", -1))
                out.append(
                    RoundResult(
                        tool_use_id=use_id,
                        tool=tool,
                        position=at if at >= 0 else None,
                        text=_result_text(block.data),
                        is_error=bool(block.data.get("is_error", False)),
                    )
                )
        return out

    def _result(self, key: str) -> RoundResult | None:
        """The round's result for a tool_use id, or for the n-th (from 0) tool_use of the
        turn that made the calls."""
        results = self.round_results
        if key.isdigit():
            return next((r for r in results if r.position == int(key)), None)
        return next((r for r in results if r.tool_use_id == key), None)

    @cached_property
    def all_text(self) -> str:
        parts = [self._request.system_text]
        for message in self._request.messages:
            for block in message.blocks:
                kind = block.data["type"]
                if kind == "text":
                    parts.append(block.data["text"])
                elif kind == "tool_result":
                    parts.append(_result_text(block.data))
        return "\n".join(parts)

    def last_user_text(self) -> str:
        for message in reversed(self._request.messages):
            if message.role == "user":
                return "\n".join(b.data["text"] for b in message.blocks if b.data["type"] == "text")
        return ""

    def holds(self, condition: Condition) -> bool:
        """Whether every field set on ``condition`` holds for this conversation."""
        results = self.round_results
        tools = {r.tool for r in results}
        if condition.tool_result_for is not None and condition.tool_result_for not in tools:
            return False
        if condition.tool_result_error is not None and (
            not results or any(r.is_error for r in results) != condition.tool_result_error
        ):
            return False
        if condition.tool_error_for is not None and not any(
            r.is_error and r.tool == condition.tool_error_for for r in results
        ):
            return False
        if condition.tool_result_count is not None and (
            len(results) != condition.tool_result_count
        ):
            return False
        if condition.tool_result_contains is not None and not any(
            condition.tool_result_contains in r.text for r in results
        ):
            return False
        if condition.has_compaction_summary is not None and (
            (self._marker in self.all_text) != condition.has_compaction_summary
        ):
            return False
        if condition.contains is not None and condition.contains not in self.all_text:
            return False
        return condition.matches is None or re.search(condition.matches, self.all_text) is not None

    def render(self, template: str, *, agent: str, turn: int) -> str:
        """Replace the echo placeholders of a turn's text."""
        if "{" not in template:
            return template
        results = self.round_results

        def value(match: re.Match[str]) -> str:
            if match.group("tool") is not None:
                mine = [r.text for r in results if r.tool == match.group("tool")]
                return "\n".join(mine) if mine else NO_RESULT
            if match.group("key") is not None:
                found = self._result(match.group("key"))
                return found.text if found is not None else NO_RESULT
            name = match.group("name")
            if name == "tool_results":
                return "\n".join(r.text for r in results)
            if name == "tool_errors":
                return "\n".join(r.text for r in results if r.is_error)
            if name == "tool_names":
                return ", ".join(r.tool for r in results)
            if name == "tool_result_count":
                return str(len(results))
            if name == "last_user_text":
                return self.last_user_text()
            if name == "message_count":
                return str(self._request.message_count)
            if name == "agent":
                return agent
            return str(turn)

        return _PLACEHOLDER.sub(value, template)
