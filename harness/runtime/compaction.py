"""Context compaction: summarize older messages through the model into one summary message.

Three independent knobs (``harness.runtime.config.PoliciesConfig``):

``trigger`` (when the check runs)
    ``between_turns`` before a request while no tool call is open; ``after_response`` after
    any response, also one that asks for tools (before they run); ``during_tools`` while the
    response's tool calls are in flight.

``cut`` (where the kept window starts, ``keep_last`` messages from the end)
    ``slide_to_user`` moves the cut forward until the kept part starts with a user message, so
    a ``tool_use`` block can be summarized away while its ``tool_result`` is kept or still to
    come: the next request carries an orphaned ``tool_result``. ``keep_pairs`` moves it back
    until the kept part does not start with a ``tool_result``.

``errors`` (a failed summary request)
    ``fail_run`` lets the error end the agent; ``keep_history`` leaves the history intact.

Whether compaction may touch a history with open tool calls at all is the conversation's
``strict`` checking (``history_checks``), not this module's: under ``strict`` such an attempt
is refused there and recorded as failed.

Every attempt is a ``harness.compaction`` span with tokens and messages before/after, the
stop_reason at the time and the outcome (compacted | skipped | failed).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode

from harness.errors import ConfigError
from harness.runtime.conversation import (
    Conversation,
    ConversationState,
    ConversationStateError,
    tool_result_ids,
)
from harness.runtime.events import RuntimeEvents
from harness.runtime.persistence import ThreadSnapshot, ThreadStore
from harness.telemetry import semconv as sc

__all__ = [
    "SUMMARY_MARKER",
    "CompactionCut",
    "CompactionErrors",
    "CompactionResult",
    "CompactionSettings",
    "CompactionTrigger",
    "Compactor",
    "estimate_tokens",
]

CompactionTrigger = Literal["between_turns", "after_response", "during_tools"]
CompactionCut = Literal["slide_to_user", "keep_pairs"]
CompactionErrors = Literal["fail_run", "keep_history"]

# Starts every summary message; the fake API's "has compaction summary" condition looks for it.
SUMMARY_MARKER = "<compaction-summary>"

Summarize = Callable[[list[dict[str, Any]]], Awaitable[str]]


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """Same approximation as the fake API: a token per 4 characters of the JSON."""
    return (len(json.dumps(messages, separators=(",", ":"))) + 3) // 4


@dataclass(frozen=True, slots=True)
class CompactionSettings:
    trigger: CompactionTrigger = "between_turns"
    cut: CompactionCut = "keep_pairs"
    errors: CompactionErrors = "keep_history"
    threshold_tokens: int = 150_000
    keep_last: int = 4

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("compaction_trigger", self.trigger, CompactionTrigger),
            ("compaction_cut", self.cut, CompactionCut),
            ("compaction_errors", self.errors, CompactionErrors),
        ):
            if value not in get_args(allowed):
                raise ConfigError(
                    f"unknown value; choose {' or '.join(get_args(allowed))}",
                    field=f"policies.{name}",
                    value=value,
                )
        if self.threshold_tokens <= 0:
            raise ConfigError(
                "must be a positive number of tokens",
                field="compaction.threshold_tokens",
                value=self.threshold_tokens,
            )
        if self.keep_last < 0:
            raise ConfigError(
                "must be zero or more", field="compaction.keep_last", value=self.keep_last
            )


@dataclass(frozen=True, slots=True)
class CompactionResult:
    outcome: Literal["compacted", "skipped", "failed"]
    reason: str
    messages_before: int
    messages_after: int


class Compactor:
    """Applies one compaction policy to the conversations of a runtime."""

    def __init__(
        self,
        settings: CompactionSettings,
        *,
        events: RuntimeEvents,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.settings = settings
        self._events = events
        self._tracer = trace.get_tracer("harness.runtime", tracer_provider=tracer_provider)
        meter = metrics.get_meter("harness.runtime", meter_provider=meter_provider)
        self._count = meter.create_counter(
            sc.HARNESS_COMPACTIONS, unit="{compaction}", description="Compaction attempts"
        )

    def due(self, context_tokens: int, conv: Conversation) -> bool:
        """Whether to compact now: the context reached the threshold and, checked between
        turns, no tool call is open."""
        if context_tokens < self.settings.threshold_tokens:
            return False
        if self.settings.trigger == "between_turns":
            return conv.state is ConversationState.READY
        return True

    def _cut(self, messages: list[dict[str, Any]]) -> int:
        """Index where the kept window starts; 0 means nothing to compact."""
        cut = max(len(messages) - self.settings.keep_last, 0)
        if self.settings.cut == "slide_to_user":
            # The original fix-up for "first message must use the user role": slide forward.
            while cut < len(messages) and messages[cut]["role"] != "user":
                cut += 1
            return cut
        # Never keep a tool_result without the tool_use before it.
        while cut > 0 and tool_result_ids(messages[cut]):
            cut -= 1
        return cut

    async def compact(
        self,
        conv: Conversation,
        *,
        agent: str,
        context_tokens: int,
        stop_reason: str | None,
        summarize: Summarize,
        thread: tuple[ThreadStore, str, str] | None = None,
    ) -> CompactionResult:
        """Compact ``conv``; with ``thread`` (store, thread name, agent) the persisted thread
        is compacted with it, under the store's ``compaction_lock``."""
        before = conv.messages
        attributes: dict[str, Any] = {
            "harness.compaction.trigger": self.settings.trigger,
            "harness.compaction.cut": self.settings.cut,
            "harness.compaction.tokens_before": context_tokens,
            "harness.compaction.messages_before": len(before),
            "harness.compaction.stop_reason": stop_reason or "",
            "harness.compaction.open_tool_calls": len(conv.open_tool_ids),
            sc.GEN_AI_AGENT_NAME: agent,
        }
        with self._tracer.start_as_current_span(
            sc.HARNESS_COMPACTION, attributes=attributes
        ) as span:
            result = await self._compact(conv, before, summarize, thread)
            after = conv.messages
            span.set_attributes(
                {
                    sc.HARNESS_COMPACTION_OUTCOME: result.outcome,
                    "harness.compaction.reason": result.reason,
                    "harness.compaction.messages_after": len(after),
                    "harness.compaction.tokens_after": estimate_tokens(after),
                }
            )
            if result.outcome == "failed":
                span.set_status(Status(StatusCode.ERROR, result.reason))
                span.set_attribute(sc.ERROR_TYPE, "compaction_failed")
        self._count.add(1, {sc.HARNESS_COMPACTION_OUTCOME: result.outcome})
        self._events.record(
            "compaction",
            agent=agent,
            outcome=result.outcome,
            reason=result.reason,
            stop_reason=stop_reason,
            open_tool_calls=list(conv.open_tool_ids),
            messages_before=result.messages_before,
            messages_after=result.messages_after,
        )
        return result

    async def _compact(
        self,
        conv: Conversation,
        before: list[dict[str, Any]],
        summarize: Summarize,
        thread: tuple[ThreadStore, str, str] | None,
    ) -> CompactionResult:
        n = len(before)
        if conv.strict and conv.state is not ConversationState.READY:
            # Refused before a summary is asked for: the history must not change mid-call.
            why = f"compaction refused: tool calls {list(conv.open_tool_ids)} are open"
            return CompactionResult("failed", why, n, n)
        cut = self._cut(before)
        if cut <= 1:
            return CompactionResult("skipped", "nothing before the kept window", n, n)
        if thread is None:
            return await self._summarize_into(conv, before, cut, summarize, None)
        store, name, agent = thread
        async with store.compaction(name, agent=agent) as snapshot:
            return await self._summarize_into(conv, before, cut, summarize, snapshot)

    async def _summarize_into(
        self,
        conv: Conversation,
        before: list[dict[str, Any]],
        cut: int,
        summarize: Summarize,
        snapshot: ThreadSnapshot | None,
    ) -> CompactionResult:
        n = len(before)
        try:
            text = await summarize(before[:cut])
        except Exception as exc:
            if self.settings.errors == "fail_run":
                raise
            return CompactionResult("failed", f"summary request failed: {exc}", n, n)
        summary = {
            "role": "user",
            "content": [{"type": "text", "text": f"{SUMMARY_MARKER}\n{text}"}],
        }
        try:
            conv.replace_range_with_summary(cut, summary)
        except ConversationStateError as exc:
            return CompactionResult("failed", str(exc), n, n)
        if snapshot is not None:
            await snapshot.replace(summary, before[cut:])
        return CompactionResult("compacted", f"summarized {cut} messages", n, len(conv))
