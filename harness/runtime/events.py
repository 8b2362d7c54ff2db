"""Runtime events: what the runtime believed happened, in order, on the run's clock.

Oracles compare these with the fake servers' own logs and the API journal, so every decision
the runtime takes about shared state (a call started or ended, a reconnect, a compaction, a
scoped query) is recorded here as well as in the trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio

from harness.clock import Clock
from harness.records import Record

__all__ = ["RuntimeEvent", "RuntimeEvents"]


def _matches(event: RuntimeEvent, kind: str, match: dict[str, Any]) -> bool:
    return event.kind == kind and all(event.data.get(k) == v for k, v in match.items())


@dataclass(frozen=True, slots=True)
class RuntimeEvent:
    """One thing the runtime did or saw."""

    seq: int
    time: float
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The event as a run record (``harness.records``), its data the payload."""
        return Record("runtime", self.kind, self.time, seq=self.seq, payload=self.data).to_json()


class RuntimeEvents:
    """Append-only, ordered log of ``RuntimeEvent``s."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._events: list[RuntimeEvent] = []
        self._waiters: list[tuple[str, dict[str, Any], anyio.Event]] = []

    def record(self, kind: str, **data: Any) -> RuntimeEvent:
        event = RuntimeEvent(len(self._events), self._clock.now(), kind, data)
        self._events.append(event)
        if self._waiters:  # usually none, and every tool call records two events
            for waiter in [w for w in self._waiters if _matches(event, w[0], w[1])]:
                self._waiters.remove(waiter)
                waiter[2].set()
        return event

    async def wait_for(self, kind: str, **match: Any) -> RuntimeEvent:
        """Wait until an event of ``kind`` whose data holds ``match`` has been recorded."""
        while True:
            for event in self._events:
                if _matches(event, kind, match):
                    return event
            entry = (kind, match, anyio.Event())
            self._waiters.append(entry)
            try:
                await entry[2].wait()
            finally:
                if entry in self._waiters:
                    self._waiters.remove(entry)

    @property
    def events(self) -> list[RuntimeEvent]:
        return list(self._events)

    def of_kind(self, kind: str) -> list[RuntimeEvent]:
        return [e for e in self._events if e.kind == kind]
