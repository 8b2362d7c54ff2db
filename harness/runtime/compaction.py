"""Context compaction: summarize older messages through the model into one summary message.

``eager`` (the original bug)
    Runs after any response whose context estimate passes the threshold, including one that
    ends with ``stop_reason == "tool_use"``, i.e. before the tools execute. It keeps the last
    ``keep_last`` messages, moving the cut forward until the kept part starts with a user
    message, so a ``tool_use`` block can be summarized away while its ``tool_result`` is still to
    come (or is kept without it): the next request carries an orphaned ``tool_result``.

``between_turns`` (the fix)
    Runs only when no tool call is open, never lets the kept part start with a ``tool_result``
    message (so no ``tool_use``/``tool_result`` pair is split: the kept part starts with an
    assistant message or a plain user message), and a failing summary request leaves the history
    intact.

Every attempt is a ``harness.compaction`` span with tokens and messages before/after, the
stop_reason at the time and the outcome (compacted | skipped | failed).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

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
from harness.telemetry import semconv as sc

__all__ = [
    "SUMMARY_MARKER",
    "CompactionPolicyName",
    "CompactionSettings",
    "Compactor",
    "estimate_tokens",
]

CompactionPolicyName = Literal["eager", "between_turns"]

# Starts every summary message; the fake API's "has compaction summary" condition looks for it.
SUMMARY_MARKER = "<compaction-summary>"

Summarize = Callable[[list[dict[str, Any]]], Awaitable[str]]


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """Same approximation as the fake API: a token per 4 characters of the JSON."""
    return (len(json.dumps(messages, separators=(",", ":"))) + 3) // 4


@dataclass(frozen=True, slots=True)
class CompactionSettings:
    policy: CompactionPolicyName = "between_turns"
    threshold_tokens: int = 150_000
    keep_last: int = 4

    def __post_init__(self) -> None:
        if self.policy not in ("eager", "between_turns"):
            raise ConfigError(
                "unknown compaction policy; choose eager or between_turns",
                field="policies.compaction",
                value=self.policy,
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

    def due(self, context_tokens: int, stop_reason: str | None, conv: Conversation) -> bool:
        """Whether this policy compacts now, after a response with ``stop_reason``."""
        if context_tokens < self.settings.threshold_tokens:
            return False
        if self.settings.policy == "eager":
            return True
        return conv.state is ConversationState.READY

    def _cut(self, messages: list[dict[str, Any]]) -> int:
        """Index where the kept window starts; 0 means nothing to compact."""
        cut = max(len(messages) - self.settings.keep_last, 0)
        if self.settings.policy == "eager":
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
    ) -> CompactionResult:
        before = conv.messages
        attributes: dict[str, Any] = {
            "harness.compaction.policy": self.settings.policy,
            "harness.compaction.tokens_before": context_tokens,
            "harness.compaction.messages_before": len(before),
            "harness.compaction.stop_reason": stop_reason or "",
            "harness.compaction.open_tool_calls": len(conv.open_tool_ids),
            sc.GEN_AI_AGENT_NAME: agent,
        }
        with self._tracer.start_as_current_span(
            sc.HARNESS_COMPACTION, attributes=attributes
        ) as span:
            result = await self._compact(conv, before, summarize)
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
        self, conv: Conversation, before: list[dict[str, Any]], summarize: Summarize
    ) -> CompactionResult:
        n = len(before)
        if self.settings.policy == "between_turns" and conv.state is not ConversationState.READY:
            return CompactionResult("skipped", "tool calls are open", n, n)
        cut = self._cut(before)
        if cut <= 1:
            return CompactionResult("skipped", "nothing before the kept window", n, n)
        try:
            text = await summarize(before[:cut])
        except Exception as exc:
            if self.settings.policy == "eager":
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
        return CompactionResult("compacted", f"summarized {cut} messages", n, len(conv))
