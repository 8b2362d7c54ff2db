"""Fault records: every fault decision as a JSON line and as a ``harness.fault`` span.

A record (a ``fault`` run record, ``harness.records``) says what happened (``kind``: added,
removed, applied, reset, closed, holding, limit_reached, ...), to what (``type``, ``target``
proxy, ``name`` of the toxic, ``stream``, ``connection``) and, for random decisions, the seeded
draw that decided it (``draw``). A recorder in a process of its own (the stdio interposer) also
stamps ``wall``, the Unix time every process of a run shares, and ``process``, the pid of the
server it fronts, so the run puts its records on the run's clock beside the servers'
(``harness._run_clock``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from opentelemetry import trace
from opentelemetry.context import Context

from harness.clock import Clock, LoopClock
from harness.records import Record
from harness.telemetry import semconv

__all__ = ["FaultRecord", "FaultRecorder"]

_log = logging.getLogger(__name__)

_SPAN_KEYS = {
    "kind": semconv.HARNESS_FAULT_ACTION,
    "type": semconv.HARNESS_FAULT_TYPE,
    "target": semconv.HARNESS_FAULT_TARGET,
    "name": semconv.HARNESS_FAULT_NAME,
    "stream": semconv.HARNESS_FAULT_STREAM,
    "trigger": semconv.HARNESS_FAULT_TRIGGER,
    "draw": semconv.HARNESS_FAULT_DRAW,
    "connection": semconv.HARNESS_FAULT_CONNECTION,
}


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """One fault decision; ``details`` holds toxic-specific values (e.g. ``timeout_ms``)."""

    time: float
    kind: str
    type: str
    target: str
    name: str | None = None
    stream: str | None = None
    trigger: str | None = None
    draw: float | None = None
    connection: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    wall: float | None = None
    process: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as a run record: the fields that are set, then ``details``."""
        payload = {
            key: getattr(self, key)
            for key in _SPAN_KEYS
            if key != "kind" and getattr(self, key) is not None
        }
        payload.update(self.details)
        record = Record(
            "fault",
            self.kind,
            round(self.time, 6),
            wall=self.wall,
            process=self.process,
            payload=payload,
        )
        return record.to_json()


class FaultRecorder:
    """Writes fault records to an optional JSON-lines file, to OTel, and to subscribers.

    Recording never raises into the caller: a failing sink is logged once and skipped.
    """

    def __init__(
        self,
        *,
        events_path: str | Path | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        clock: Clock | None = None,
        wall_clock: bool = False,
    ) -> None:
        """``wall_clock``: stamp every record with the Unix time (a recorder whose records
        another process merges)."""
        self._clock = clock or LoopClock()
        self._wall_clock = wall_clock
        # The pid of the server process the records are about, once there is one.
        self.process: int | None = None
        self._tracer = trace.get_tracer("harness.faults", tracer_provider=tracer_provider)
        self._file: IO[str] | None = None
        if events_path is not None:
            self._file = Path(events_path).open("a", encoding="utf-8")  # noqa: SIM115
        self._subscribers: list[Callable[[FaultRecord], None]] = []
        self.records: list[FaultRecord] = []

    def subscribe(self, callback: Callable[[FaultRecord], None]) -> Callable[[], None]:
        """Call ``callback`` with every new record; returns the function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def record(
        self,
        kind: str,
        *,
        type: str,
        target: str,
        name: str | None = None,
        stream: str | None = None,
        trigger: str | None = None,
        draw: float | None = None,
        connection: int | None = None,
        parent: Context | None = None,
        **details: Any,
    ) -> FaultRecord:
        """Record one fault decision; ``parent`` (an OTel context) parents its span, e.g. on the
        span of the request the fault hit."""
        entry = FaultRecord(
            time=self._clock.now(),
            kind=kind,
            type=type,
            target=target,
            name=name,
            stream=stream,
            trigger=trigger,
            draw=draw,
            connection=connection,
            details=details,
            wall=round(time.time(), 6) if self._wall_clock else None,
            process=self.process,
        )
        self.records.append(entry)
        self._emit(entry, parent)
        return entry

    def _emit(self, entry: FaultRecord, parent: Context | None = None) -> None:
        try:
            attributes: dict[str, Any] = {
                span_key: getattr(entry, key)
                for key, span_key in _SPAN_KEYS.items()
                if getattr(entry, key) is not None
            }
            attributes.update({f"harness.fault.{k}": v for k, v in entry.details.items()})
            span = self._tracer.start_span(
                semconv.HARNESS_FAULT, context=parent, attributes=attributes
            )
            span.end()
        except Exception:  # instrumentation must never break the proxy
            _log.exception("could not emit a fault span")
        if self._file is not None:
            try:
                self._file.write(json.dumps(entry.to_json()) + "\n")
                self._file.flush()
            except (OSError, TypeError, ValueError):
                _log.exception("could not write a fault event; events file disabled")
                self._file = None
        for callback in list(self._subscribers):
            try:
                callback(entry)
            except Exception:
                _log.exception("a fault record subscriber failed")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
