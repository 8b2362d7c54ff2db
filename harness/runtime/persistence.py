"""Persisted threads: the runtime's session store, shared by every run that names a thread.

A run on a thread loads the thread's history (``load``), then writes every message it adds as
it goes (``append``), so a run that is killed or interrupted leaves exactly what it had written,
and the next run on the thread (a second invocation, a resume) starts from that. Messages are
kept as rows serialized to JSON and read back from it: a reload sees what was stored, not the
objects the writer held.

The knobs (``harness.runtime.config.PoliciesConfig``) this module acts on:

- ``stored_results``: a user message of ``tool_result`` blocks is one row (``blocks``) or one
  ``tool`` row of plain text per result (``text``); a reload turns either back into blocks.
- ``history_window`` / ``window_cut``: a load keeps the last k rows, cut ``plain`` (as they
  are), ``by_content`` (back over rows holding tool blocks, blind to a text ``tool`` row) or
  ``pairs`` (back until the window starts with a user turn that is no tool result).
- ``resume_repair``: ``answer_pending`` gives every call without a result an error result.
- ``thread_compaction``: ``replace`` clears the summarized rows and writes the summary in
  their place; ``append_entry`` (a session log) appends a compaction entry naming the first
  entry it keeps, counted back over the log, and a reload reads the last entry's summary and
  the log from there.
- ``compaction_lock``: compaction of a thread snapshots it, awaits the summary, then replaces
  the summarized rows; ``held`` keeps the thread's lock all along, ``released`` lets go while
  it waits, and the replacement is built from the snapshot (what was written meanwhile is
  lost).

Every write is a ``thread_written`` event (rows, writer; a repair's rows say so), every load
a ``thread_loaded`` event, every compaction a ``thread_compacted`` event and, at the end of a
run, each thread's rows and its reloaded messages are a ``thread_stored`` event: the oracles
of ``harness.oracles.history_generic`` read them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio

from harness.runtime.conversation import tool_result_ids, tool_use_ids
from harness.runtime.events import RuntimeEvents

__all__ = ["INTERRUPTED_RESULT", "ThreadSnapshot", "ThreadStore"]

Message = dict[str, Any]
Row = dict[str, Any]
StoredResults = Literal["blocks", "text"]
WindowCut = Literal["plain", "by_content", "pairs"]
ResumeRepair = Literal["none", "answer_pending"]
CompactionLock = Literal["held", "released"]
ThreadCompaction = Literal["replace", "append_entry"]

# The error result a repaired load gives a call that never got one.
INTERRUPTED_RESULT = "interrupted: this tool call never returned a result (the run ended first)"


def _blocks(row: Row) -> list[dict[str, Any]]:
    content = row.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


class ThreadStore:
    """Every persisted thread of a runtime, by name."""

    def __init__(
        self,
        *,
        events: RuntimeEvents,
        stored_results: StoredResults = "blocks",
        window: int | None = None,
        window_cut: WindowCut = "pairs",
        resume_repair: ResumeRepair = "answer_pending",
        compaction_lock: CompactionLock = "held",
        thread_compaction: ThreadCompaction = "replace",
        keep_entries: int = 4,
    ) -> None:
        self._events = events
        self._thread_compaction = thread_compaction
        self._keep_entries = keep_entries
        self._stored_results = stored_results
        self._window = window
        self._window_cut = window_cut
        self._repair = resume_repair
        self.compaction_lock = compaction_lock
        # Rows as JSON text: what a reload reads is what was stored.
        self._threads: dict[str, list[str]] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._next_id = 1

    def _lock(self, thread: str) -> anyio.Lock:
        return self._locks.setdefault(thread, anyio.Lock())

    def rows(self, thread: str) -> list[Row]:
        return [json.loads(r) for r in self._threads.get(thread, [])]

    # -- rows <-> messages ------------------------------------------------------------------
    def _encode(self, message: Message, writer: str | None) -> list[Row]:
        """The rows of ``message``; ``writer`` None: only counted, no ids drawn."""
        results = [b for b in _blocks(message) if b.get("type") == "tool_result"]
        rows: list[Row]
        if (
            self._stored_results == "text"
            and message.get("role") == "user"
            and results
            and len(results) == len(_blocks(message))
        ):
            rows = [
                {
                    "role": "tool",
                    "tool_use_id": str(b["tool_use_id"]),
                    "content": _result_text(b),
                    **({"is_error": True} if b.get("is_error") else {}),
                }
                for b in results
            ]
        else:
            rows = [{"role": message["role"], "content": message["content"]}]
        if writer is not None:
            for row in rows:
                row["id"], row["writer"] = self._next_id, writer
                self._next_id += 1
        return rows

    @staticmethod
    def decode(rows: list[Row]) -> list[Message]:
        """Rows as API messages: consecutive ``tool`` rows become one user message of
        ``tool_result`` blocks."""
        messages: list[Message] = []
        pending: list[dict[str, Any]] = []
        for row in rows:
            if row.get("role") == "tool":
                block: dict[str, Any] = {
                    "type": "tool_result",
                    "tool_use_id": row.get("tool_use_id"),
                    "content": [{"type": "text", "text": str(row.get("content") or "(empty)")}],
                }
                if row.get("is_error"):
                    block["is_error"] = True
                pending.append(block)
                continue
            if pending:
                messages.append({"role": "user", "content": pending})
                pending = []
            messages.append({"role": row["role"], "content": row["content"]})
        if pending:
            messages.append({"role": "user", "content": pending})
        return messages

    @staticmethod
    def render(rows: list[Row]) -> list[Row]:
        """The rows a reload reads: with compaction entries in the log (``append_entry``), the
        last entry's summary, then the rows from its first kept one on (an older entry in that
        range is read where it stands, as the summary message it is)."""
        entries = [i for i, r in enumerate(rows) if r.get("compaction")]
        if not entries:
            return rows
        last = rows[entries[-1]]
        first = next((i for i, r in enumerate(rows) if r["id"] == last.get("first_kept")), None)
        kept = [] if first is None else [r for r in rows[first:] if r is not last]
        return [last, *kept]

    # -- loading ------------------------------------------------------------------------------
    def _window_start(self, rows: list[Row]) -> int:
        if self._window is None or len(rows) <= self._window:
            return 0
        cut = len(rows) - self._window
        if self._window_cut == "plain":
            return cut

        def tool_blocks(row: Row) -> bool:
            return any(b.get("type") in ("tool_use", "tool_result") for b in _blocks(row))

        if self._window_cut == "by_content":
            # A tool-role row of plain text holds no tool block: the scan does not see it.
            while cut > 0 and (tool_blocks(rows[cut]) or rows[cut].get("role") == "assistant"):
                cut -= 1
            return cut
        while cut > 0 and (rows[cut].get("role") != "user" or tool_result_ids(rows[cut])):
            cut -= 1
        return cut

    def load(self, thread: str, *, agent: str) -> list[Message]:
        """The thread's history as a run starts it: repaired (written back), then windowed."""
        repaired = self._answer_pending(thread, agent) if self._repair == "answer_pending" else []
        rows = self.render(self.rows(thread))
        start = self._window_start(rows)
        self._events.record(
            "thread_loaded",
            thread=thread,
            agent=agent,
            rows=len(rows),
            kept_rows=[r["id"] for r in rows[start:]],
            repaired=repaired,
        )
        return self.decode(rows[start:])

    def _answer_pending(self, thread: str, agent: str) -> list[str]:
        """Give each ``tool_use`` without a result in the next message an error result,
        written into the thread right after that message; the ids repaired."""
        rows = self.rows(thread)
        out: list[Row] = []
        repaired: list[str] = []
        added: list[Row] = []
        index = 0
        while index < len(rows):
            row = rows[index]
            out.append(row)
            index += 1
            ids = tool_use_ids(row) if row.get("role") == "assistant" else []
            if not ids:
                continue
            # The next message: every user or tool row up to the next assistant row (the API
            # merges consecutive user messages into one).
            answered: set[str] = set()
            while index < len(rows) and rows[index].get("role") in ("user", "tool"):
                following = rows[index]
                if following.get("role") == "tool":
                    answered.add(str(following.get("tool_use_id")))
                answered.update(tool_result_ids(following))
                out.append(following)
                index += 1
            missing = [i for i in ids if i not in answered]
            if missing:
                message = {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": i,
                            "is_error": True,
                            "content": [{"type": "text", "text": INTERRUPTED_RESULT}],
                        }
                        for i in missing
                    ],
                }
                new = self._encode(message, agent)
                out.extend(new)
                added.extend(new)
                repaired.extend(missing)
        if added:
            self._threads[thread] = [json.dumps(r) for r in out]
            self._events.record(
                "thread_written",
                thread=thread,
                agent=agent,
                row_ids=[r["id"] for r in added],
                roles=[r["role"] for r in added],
                repair=repaired,
            )
        return repaired

    # -- writing ------------------------------------------------------------------------------
    async def append(self, thread: str, messages: list[Message], *, agent: str) -> None:
        """Write ``messages`` at the end of the thread (waiting while a compaction holds it)."""
        if not messages:
            return
        async with self._lock(thread):
            self._write(thread, messages, agent)

    def _write(self, thread: str, messages: list[Message], agent: str) -> list[Row]:
        rows = [row for m in messages for row in self._encode(m, agent)]
        self._threads.setdefault(thread, []).extend(json.dumps(r) for r in rows)
        self._events.record(
            "thread_written",
            thread=thread,
            agent=agent,
            row_ids=[r["id"] for r in rows],
            roles=[r["role"] for r in rows],
        )
        return rows

    @asynccontextmanager
    async def compaction(self, thread: str, *, agent: str) -> AsyncIterator[ThreadSnapshot]:
        """Compaction of ``thread``: the snapshot, held locked or not (``compaction_lock``)
        while the caller awaits its summary, then ``replace``."""
        lock = self._lock(thread)
        await lock.acquire()
        snapshot = ThreadSnapshot(self, thread, agent, self.rows(thread), lock)
        try:
            if self.compaction_lock == "released":
                lock.release()
                snapshot.locked = False
            yield snapshot
        finally:
            if snapshot.locked:
                lock.release()

    def replace(self, snapshot: ThreadSnapshot, summary: Message, kept: list[Message]) -> None:
        """``snapshot.replace`` with the thread's lock held."""
        if self._thread_compaction == "append_entry":
            self._append_entry(snapshot, summary)
            return
        rows = snapshot.rows
        kept_rows = min(sum(len(self._encode(m, None)) for m in kept), len(rows))
        covered, tail = rows[: len(rows) - kept_rows], rows[len(rows) - kept_rows :]
        before = [r["id"] for r in self.rows(snapshot.thread)]
        summary_rows = self._encode(summary, snapshot.agent)
        for row in summary_rows:
            row["covers"] = [r["id"] for r in covered]
        self._threads[snapshot.thread] = [json.dumps(r) for r in (*summary_rows, *tail)]
        self._events.record(
            "thread_compacted",
            thread=snapshot.thread,
            agent=snapshot.agent,
            lock=self.compaction_lock,
            snapshot_ids=[r["id"] for r in rows],
            covered_ids=[r["id"] for r in covered],
            summary_ids=[r["id"] for r in summary_rows],
            rows_before=before,
        )

    def _append_entry(self, snapshot: ThreadSnapshot, summary: Message) -> None:
        """Append a compaction entry: the summary and the first entry it keeps, counted
        ``keep_entries`` back over the log as it stands, never starting at a tool result (a
        compaction entry is a valid start, wherever it lies)."""
        rows = self.rows(snapshot.thread)
        start = max(len(rows) - self._keep_entries, 0)
        while start > 0 and (rows[start].get("role") == "tool" or tool_result_ids(rows[start])):
            start -= 1
        (entry,) = self._encode(summary, snapshot.agent)
        entry["compaction"] = True
        entry["first_kept"] = rows[start]["id"] if rows else None
        entry["covers"] = [r["id"] for r in rows[:start]]
        self._threads[snapshot.thread].append(json.dumps(entry))
        self._events.record(
            "thread_compacted",
            thread=snapshot.thread,
            agent=snapshot.agent,
            lock=self.compaction_lock,
            snapshot_ids=[r["id"] for r in snapshot.rows],
            covered_ids=entry["covers"],
            summary_ids=[entry["id"]],
            first_kept=entry["first_kept"],
            rows_before=[r["id"] for r in rows],
        )

    # -- the end of a run ---------------------------------------------------------------------
    def record_final(self) -> None:
        """Each thread as it stands, as rows and as a reload without window would read it."""
        for thread in sorted(self._threads):
            rows = self.rows(thread)
            self._events.record(
                "thread_stored",
                thread=thread,
                rows=rows,
                messages=self.decode(self.render(rows)),
            )


class ThreadSnapshot:
    """A thread as compaction saw it when it started."""

    def __init__(
        self, store: ThreadStore, thread: str, agent: str, rows: list[Row], lock: anyio.Lock
    ) -> None:
        self._store = store
        self.thread = thread
        self.agent = agent
        self.rows = rows
        self._lock = lock
        self.locked = True

    async def replace(self, summary: Message, kept: list[Message]) -> None:
        """Clear the thread and write ``summary`` (covering the snapshot's rows before the
        last ones that hold ``kept``) followed by those rows: built from the snapshot."""
        if not self.locked:
            await self._lock.acquire()
            self.locked = True
        self._store.replace(self, summary, kept)
