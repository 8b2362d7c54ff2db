"""Conversation history, as an explicit state machine under the fixed policy.

States::

    ready ──begin_request──> awaiting_model ──add_response(tool_use)──> tools_open(ids)
      ^                          │                                          │
      └────add_response(other)───┘<──────────add_tool_results(ids)──────────┘

Under ``strict=True`` (``history_checks: strict``) every transition is checked where it is made: a
``tool_result`` without its open ``tool_use``, a request while tools are open, or compaction
while tools are open is refused with ``ConversationStateError`` instead of being left to timing.
Under ``strict=False`` (``history_checks: off``) the history is a plain list, as in the original
runtime, so the orphaned ``tool_result`` reaches the API and the API's 400 is what happens.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from typing import Any

from harness._copy import json_copy
from harness.errors import RuntimeFailure

__all__ = ["Conversation", "ConversationState", "ConversationStateError"]

Message = dict[str, Any]


class ConversationState(enum.Enum):
    READY = "ready"
    AWAITING_MODEL = "awaiting_model"
    TOOLS_OPEN = "tools_open"


class ConversationStateError(RuntimeFailure):
    """A transition the conversation's state does not allow (strict checking only)."""


def _blocks(message: Message) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def tool_use_ids(message: Message) -> list[str]:
    return [str(b["id"]) for b in _blocks(message) if b.get("type") == "tool_use"]


def tool_result_ids(message: Message) -> list[str]:
    return [str(b["tool_use_id"]) for b in _blocks(message) if b.get("type") == "tool_result"]


class Conversation:
    """The messages of one agent, and where it stands in the tool loop."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self._messages: list[Message] = []
        self._state = ConversationState.READY
        self._open: tuple[str, ...] = ()

    # -- reading ---------------------------------------------------------------------------
    @property
    def state(self) -> ConversationState:
        return self._state

    @property
    def open_tool_ids(self) -> tuple[str, ...]:
        return self._open

    @property
    def messages(self) -> list[Message]:
        """A deep copy, safe to send while the conversation moves on."""
        return json_copy(self._messages)

    def __len__(self) -> int:
        return len(self._messages)

    def json_chars(self, start: int = 0) -> int:
        """Characters of messages ``[start:]`` as JSON (no copy is made to count them)."""
        return len(json.dumps(self._messages[start:]))

    # -- transitions -----------------------------------------------------------------------
    def load(self, messages: Sequence[Message]) -> None:
        """Start from a persisted history (a thread the run continues)."""
        self._require(ConversationState.READY, "load a history")
        self._messages = json_copy(list(messages))

    def add_assistant_text(self, text: str) -> None:
        """An assistant message the runtime writes itself (no request made for it)."""
        self._require(ConversationState.READY, "add an assistant message")
        self._messages.append({"role": "assistant", "content": [{"type": "text", "text": text}]})

    def add_user_text(self, text: str) -> None:
        self._require(ConversationState.READY, "add a user message")
        self._messages.append({"role": "user", "content": [{"type": "text", "text": text}]})

    def begin_request(self) -> list[Message]:
        """The messages to send; moves to ``awaiting_model``."""
        self._require(ConversationState.READY, "send a request")
        self._state = ConversationState.AWAITING_MODEL
        return self.messages

    def abort_request(self) -> None:
        """The request failed: back to ``ready`` with the history untouched."""
        if self._state is ConversationState.AWAITING_MODEL:
            self._state = ConversationState.READY

    def add_response(self, content: Sequence[dict[str, Any]], stop_reason: str | None) -> None:
        self._require(ConversationState.AWAITING_MODEL, "add a model response")
        message: Message = {"role": "assistant", "content": list(content)}
        self._messages.append(message)
        ids = tuple(tool_use_ids(message))
        if stop_reason == "tool_use" and ids:
            self._state, self._open = ConversationState.TOOLS_OPEN, ids
        else:
            self._state, self._open = ConversationState.READY, ()

    def add_tool_results(self, results: Sequence[dict[str, Any]]) -> None:
        """Append one user message holding every ``tool_result`` of the open tool calls."""
        ids = tuple(str(r["tool_use_id"]) for r in results)
        if self.strict:
            if self._state is not ConversationState.TOOLS_OPEN:
                raise ConversationStateError(
                    f"tool results {list(ids)} arrived while the conversation is "
                    f"{self._state.value}, not tools_open"
                )
            if sorted(ids) != sorted(self._open):
                raise ConversationStateError(
                    f"tool results {list(ids)} do not answer the open tool calls {list(self._open)}"
                )
        self._messages.append({"role": "user", "content": list(results)})
        self._state, self._open = ConversationState.READY, ()

    def adopt(self, messages: Sequence[Message]) -> None:
        """Start from a settled history kept elsewhere (a subagent that shares its parent's
        session starts from the parent's history)."""
        self._require(ConversationState.READY, "adopt a history")
        self._messages.extend(json_copy(list(messages)))

    def replace_settled(self, summary: Message) -> int:
        """Another writer of this session (a subagent sharing it) puts its compaction summary in
        place of every message before the open turn; returns how many it replaced. The open
        turn stays, so no tool pair is split and the pending results still fit."""
        end = len(self._messages) - (1 if self._open else 0)
        self._messages[:end] = [summary]
        return end

    def insert_settled(self, messages: Sequence[Message]) -> None:
        """Another writer of this history (a background subagent whose calls are visible) adds
        whole tool rounds ahead of the open turn, so the pending results still fit."""
        end = len(self._messages) - (1 if self._open else 0)
        self._messages[end:end] = json_copy(list(messages))

    def replace_range_with_summary(self, end: int, summary: Message) -> None:
        """Compaction: messages ``[0, end)`` become the one ``summary`` message."""
        if self.strict and self._state is not ConversationState.READY:
            raise ConversationStateError(
                f"compaction refused: the conversation is {self._state.value}"
                + (f" with open tool calls {list(self._open)}" if self._open else "")
            )
        self._messages[:end] = [summary]

    def _require(self, state: ConversationState, action: str) -> None:
        if self.strict and self._state is not state:
            raise ConversationStateError(
                f"cannot {action}: the conversation is {self._state.value}, not {state.value}"
            )
