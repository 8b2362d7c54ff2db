"""Read what the scripted model needs from a validated conversation: conditions and echoes."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

from fake_servers.anthropic._validation import Block, ParsedRequest
from fake_servers.anthropic.script import Condition

__all__ = ["ConversationView"]

_PLACEHOLDER = re.compile(r"\{(tool_results|tool_names|last_user_text|message_count|agent|turn)\}")


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
    def _last_results(self) -> list[Block]:
        last = self._request.messages[-1]
        if last.role != "user":
            return []
        return [b for b in last.blocks if b.data["type"] == "tool_result"]

    @cached_property
    def _tool_names(self) -> list[str]:
        messages = self._request.messages
        if len(messages) < 2 or not self._last_results:
            return []
        names = {
            b.data["id"]: b.data["name"]
            for b in messages[-2].blocks
            if b.data["type"] == "tool_use"
        }
        return [names.get(b.data["tool_use_id"], "") for b in self._last_results]

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
        if condition.tool_result_for is not None and (
            condition.tool_result_for not in self._tool_names
        ):
            return False
        if condition.tool_result_error is not None:
            if not self._last_results:
                return False
            is_error = bool(self._last_results[-1].data.get("is_error", False))
            if is_error != condition.tool_result_error:
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

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "tool_results":
                return "\n".join(_result_text(b.data) for b in self._last_results)
            if name == "tool_names":
                return ", ".join(self._tool_names)
            if name == "last_user_text":
                return self.last_user_text()
            if name == "message_count":
                return str(self._request.message_count)
            if name == "agent":
                return agent
            return str(turn)

        return _PLACEHOLDER.sub(value, template)
