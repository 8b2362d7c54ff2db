"""The journal: every request the fake API answered, in order.

Each record (an ``api`` run record of kind ``request``, ``harness.records``) holds a sequence
number, the injected clock's time, endpoint, agent, turn index, a request summary (model,
message count, stream flag, ``x-stainless-retry-count``, per message the role and block types
with tool_use / tool_result ids; the full messages and system prompt only when the journal is
created with ``capture_content=True``), the validation verdict (``"ok"`` or the exact error), a
response summary (id, stop_reason, tool_use ids, the type of each content block, usage; a
count's ``input_tokens``) or the error answered, the injected fault if any, what server-side
context management cleared, the ``request-id`` and the request's ``traceparent``. API keys are
never recorded.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections import deque
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

from harness._copy import json_copy
from harness.records import Record

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
    _size: int = field(default=0, repr=False, compare=False)
    """Bytes of the request body: what holding this record in memory costs, roughly."""
    _offset: int | None = field(default=None, repr=False, compare=False)

    def defer_messages(self, messages: list[Any], *, capture_content: bool) -> None:
        """Record the (validated) messages; their summary is built on first read."""
        self._messages = messages
        self._capture = capture_content

    def complete(self) -> JournalRecord:
        """Build the deferred messages summary, if any; returns self."""
        if self._messages is not None:
            messages, self._messages = self._messages, None
            if self._capture:
                self.request["messages"] = messages
            else:
                # A refused body whose messages are not messages: nothing to say about them.
                with contextlib.suppress(KeyError, TypeError, AttributeError):
                    self.request["messages"] = summarize_messages(messages)
        return self

    def to_json(self) -> dict[str, Any]:
        """The record as a run record (source ``api``, kind ``request``): a JSON-ready dict of
        its own (a run's record reads every one)."""
        self.complete()
        payload = {name: json_copy(getattr(self, name)) for name in _PAYLOAD_FIELDS}
        return Record("api", "request", self.time, seq=self.seq, payload=payload).to_json()

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> JournalRecord:
        """The record ``to_json`` wrote."""
        return cls(**{k: v for k, v in row.items() if k not in ("source", "kind")})


_PAYLOAD_FIELDS = tuple(
    f.name
    for f in fields(JournalRecord)
    if not f.name.startswith("_") and f.name not in ("seq", "time")
)


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
    """Ordered ``JournalRecord`` list, optionally mirrored line by line to a JSON Lines file.

    Memory is bounded: once the finished records held in memory weigh more than
    ``memory_budget`` bytes of request bodies, the oldest are dropped from memory and read back
    from the JSON Lines file when ``records`` is asked for (the ``path`` file, or a temporary
    spill file without one). A handful of 30 MB requests therefore costs a file, not RSS.
    """

    def __init__(
        self,
        *,
        capture_content: bool = False,
        path: str | Path | None = None,
        memory_budget: int = 64 * 1024 * 1024,
    ) -> None:
        self.capture_content = capture_content
        self.memory_budget = memory_budget
        self._entries: list[JournalRecord | int] = []
        self._finished: deque[JournalRecord] = deque()
        self._held = 0
        self._sink: IO[str] | None = None
        self._spill: IO[str] | None = None
        if path is not None:
            # Read back too: spilled records are found again by their offset.
            self._sink = Path(path).open("w+", encoding="utf-8")  # noqa: SIM115 - in close()

    @property
    def records(self) -> list[JournalRecord]:
        """Every record so far, in arrival order."""
        return [
            entry.complete() if isinstance(entry, JournalRecord) else self._load(entry)
            for entry in self._entries
        ]

    @property
    def held_bytes(self) -> int:
        """Request-body bytes of the finished records still held in memory."""
        return self._held

    def next_seq(self) -> int:
        return len(self._entries) + 1

    def begin(self, record: JournalRecord) -> None:
        """Add a record when its request arrives (so records stay in arrival order)."""
        self._entries.append(record)

    def finish(self, record: JournalRecord) -> None:
        """Mark a record complete: it is mirrored to the JSON Lines file now."""
        if self._sink is not None:
            record._offset = self._append(self._sink, record)
        self._held += record._size
        self._finished.append(record)
        while self._held > self.memory_budget and self._finished:
            self._evict(self._finished.popleft())

    def _append(self, out: IO[str], record: JournalRecord) -> int:
        out.seek(0, 2)
        offset = out.tell()
        out.write(json.dumps(record.to_json()) + "\n")
        out.flush()
        return offset

    def _evict(self, record: JournalRecord) -> None:
        if record._offset is None:
            if self._spill is None:
                self._spill = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
            record._offset = self._append(self._spill, record)
        index = record.seq - 1
        if 0 <= index < len(self._entries) and self._entries[index] is record:
            # A negative offset marks the spill file, a non-negative one the journal file.
            self._entries[index] = record._offset if self._sink is not None else -1 - record._offset
        self._held -= record._size

    def _load(self, offset: int) -> JournalRecord:
        source = self._sink if offset >= 0 else self._spill
        assert source is not None
        source.seek(offset if offset >= 0 else -1 - offset)
        line = source.readline()
        source.seek(0, 2)
        return JournalRecord.from_json(json.loads(line))

    def write_jsonl(self, path: str | Path) -> None:
        """Write every record as one JSON object per line."""
        with Path(path).open("w", encoding="utf-8") as out:
            for record in self.records:
                out.write(json.dumps(record.to_json()) + "\n")

    def close(self) -> None:
        """Flush and close the mirror file, if any; records spilled out of memory can no
        longer be read back after this."""
        for handle in (self._sink, self._spill):
            if handle is not None:
                handle.close()
        self._sink = self._spill = None
