"""The server-side event log: what a fake MCP server saw, in order.

Oracles compare it with what the client believed (a call the client timed out on may still have
finished on the server). Events are appended in memory and, when a sink file is given, written
and flushed one JSON line at a time, so a server that SIGKILLs itself leaves a complete log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Literal

import anyio

from harness._copy import json_copy
from harness.records import Record

__all__ = ["Event", "EventKind", "EventLog"]

EventKind = Literal[
    "started",
    "request",
    "finished",
    "errored",
    "cancelled",
    "cancel_notice",
    "crashed",
    "stopped",
    "store_write",
    "store_read",
    "sessions_forgotten",
]


@dataclass(frozen=True, slots=True)
class Event:
    """One thing the server saw: a ``server`` run record (``harness.records``).

    ``time`` is the server's clock; ``duration`` is set on ``finished`` / ``errored`` /
    ``cancelled``; ``call_index`` is the 1-based per-tool index. ``connection`` numbers the client
    connections this server process served (1, 2, ...) and ``process`` is its pid when it runs as a
    subprocess: request ids restart on every connection, and a respawned server appends to the same
    log. ``wall`` (a subprocess's events only) is the Unix time, the clock every process of a run
    shares. ``cancel_notice`` records a client's ``notifications/cancelled`` for ``request_id`` (it
    arrives after the handler was cancelled): a ``cancelled`` request without one was cut off by its
    connection closing. ``store_write`` / ``store_read`` record a declared memory-like tool's store
    operation (``detail``: key, scope, value or the writes read); a ``sessions_forgotten`` event
    marks where an HTTP server dropped its session table."""

    seq: int
    time: float
    kind: EventKind
    server: str
    method: str | None = None
    tool: str | None = None
    request_id: str | None = None
    context_id: str | None = None
    call_index: int | None = None
    duration: float | None = None
    arguments: dict[str, Any] | None = None
    connection: int | None = None
    process: int | None = None
    wall: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The event as a run record (``harness.records``), without empty fields."""
        # Copied as JSON data (what every field holds), not by ``asdict``'s generic walk.
        payload = {}
        for key in _PAYLOAD_FIELDS:
            value = getattr(self, key)
            if value is not None and value != {}:
                payload[key] = json_copy(value)
        return Record(
            "server",
            self.kind,
            self.time,
            seq=self.seq,
            wall=self.wall,
            process=self.process,
            payload=payload,
        ).to_json()


_ENVELOPE = ("seq", "time", "kind", "wall", "process")
_PAYLOAD_FIELDS = tuple(f.name for f in fields(Event) if f.name not in _ENVELOPE)


class EventLog:
    """Ordered events of one server (all its connections), optionally mirrored to a file."""

    def __init__(self, *, sink: str | Path | None = None) -> None:
        self._events: list[Event] = []
        # Created by waiters (inside a loop); the log itself may be built outside one.
        self._waiters: list[anyio.Event] = []
        self._sink: IO[str] | None = open(sink, "a", encoding="utf-8") if sink else None  # noqa: SIM115

    @property
    def events(self) -> list[Event]:
        """A snapshot of the events so far, in order."""
        return list(self._events)

    def append(self, kind: EventKind, *, time: float, server: str, **fields: Any) -> Event:
        """Record an event (and write it through to the sink at once)."""
        event = Event(seq=len(self._events) + 1, time=time, kind=kind, server=server, **fields)
        self._events.append(event)
        if self._sink is not None:
            self._sink.write(json.dumps(event.to_json(), default=str) + "\n")
            self._sink.flush()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.set()
        return event

    def find(self, **match: Any) -> list[Event]:
        """Events whose fields equal every ``match`` value (e.g. ``kind="cancelled"``)."""
        return [e for e in self._events if all(getattr(e, k) == v for k, v in match.items())]

    async def wait_for(self, **match: Any) -> Event:
        """Wait until an event matching ``match`` exists and return the first one.

        Has no timeout of its own: wrap it in ``anyio.fail_after`` in tests.
        """
        while True:
            found = self.find(**match)
            if found:
                return found[0]
            waiter = anyio.Event()
            self._waiters.append(waiter)
            await waiter.wait()

    def write_jsonl(self, path: str | Path) -> None:
        """Write every event so far to ``path`` as JSON Lines."""
        with open(path, "w", encoding="utf-8") as out:
            for event in self._events:
                out.write(json.dumps(event.to_json(), default=str) + "\n")

    def close(self) -> None:
        """Close the sink file, if any."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None
