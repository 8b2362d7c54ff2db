"""The journal: every request the fake API answered, in order.

Each record holds a sequence number, the injected clock's time, endpoint, agent, turn index, a
request summary (model, message count, stream flag, ``x-stainless-retry-count``, per message the
role and block types with tool_use / tool_result ids; the full messages and system prompt only
when the journal is created with ``capture_content=True``), the validation verdict (``"ok"`` or
the exact error), a response summary (id, stop_reason, tool_use ids, usage) or the error
answered, the injected fault if any, what server-side context management cleared, the
``request-id`` and the request's ``traceparent``. API keys are never recorded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["Journal", "JournalRecord"]


@dataclass(slots=True)
class JournalRecord:
    """One request and what the fake answered."""

    seq: int
    time: float
    method: str
    endpoint: str
    request_id: str
    status: int = 200
    agent: str | None = None
    turn: int | None = None
    request: dict[str, Any] = field(default_factory=dict)
    verdict: str | dict[str, Any] = "ok"
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    fault: dict[str, Any] | None = None
    traceparent: str | None = None
    context_edits: dict[str, Any] | None = None
    """What server-side context management cleared (``applied_edits``, tool_use ids)."""
    # The request's messages, summarised into ``request["messages"]`` only when the record is
    # read: building the summary on the hot path costs as much as validating.
    _messages: list[Any] | None = field(default=None, repr=False, compare=False)
    _capture: bool = field(default=False, repr=False, compare=False)

    def defer_messages(self, messages: list[Any], *, capture_content: bool) -> None:
        """Record the (validated) messages; their summary is built on first read."""
        self._messages = messages
        self._capture = capture_content

    def complete(self) -> JournalRecord:
        """Build the deferred messages summary, if any; returns self."""
        if self._messages is not None:
            messages, self._messages = self._messages, None
            self.request["messages"] = messages if self._capture else summarize_messages(messages)
        return self

    def to_dict(self) -> dict[str, Any]:
        self.complete()
        data = asdict(self)
        del data["_messages"], data["_capture"]
        return data


def summarize_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Roles and block types with tool_use / tool_result ids, without any text."""
    summary = []
    for message in messages:
        content = message["content"]
        blocks = []
        if isinstance(content, list):
            for block in content:
                entry = {"type": block["type"]}
                if block["type"] == "tool_use":
                    entry["id"] = block["id"]
                    entry["name"] = block["name"]
                elif block["type"] == "tool_result":
                    entry["tool_use_id"] = block["tool_use_id"]
                    if block.get("is_error"):
                        entry["is_error"] = True
                blocks.append(entry)
        else:
            blocks.append({"type": "text"})
        summary.append({"role": message["role"], "blocks": blocks})
    return summary


class Journal:
    """Ordered ``JournalRecord`` list, optionally mirrored line by line to a JSON Lines file."""

    def __init__(self, *, capture_content: bool = False, path: str | Path | None = None) -> None:
        self.capture_content = capture_content
        self._records: list[JournalRecord] = []
        self._sink: IO[str] | None = None
        if path is not None:
            self._sink = Path(path).open("w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    @property
    def records(self) -> list[JournalRecord]:
        """Every record so far, in arrival order."""
        return [record.complete() for record in self._records]

    def next_seq(self) -> int:
        return len(self._records) + 1

    def begin(self, record: JournalRecord) -> None:
        """Add a record when its request arrives (so records stay in arrival order)."""
        self._records.append(record)

    def finish(self, record: JournalRecord) -> None:
        """Mark a record complete: it is mirrored to the JSON Lines file now."""
        if self._sink is not None:
            self._sink.write(json.dumps(record.to_dict()) + "\n")
            self._sink.flush()

    def write_jsonl(self, path: str | Path) -> None:
        """Write every record as one JSON object per line."""
        with Path(path).open("w", encoding="utf-8") as out:
            for record in self._records:
                out.write(json.dumps(record.to_dict()) + "\n")

    def close(self) -> None:
        """Flush and close the mirror file, if any."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None
