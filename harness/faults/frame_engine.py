"""Decisions about JSON-RPC frames: which plan fault hits which frame, and what follows.

``FrameEngine`` is pure bookkeeping shared by the stdio interposer and the in-process transport
wrapper: it is told about each frame (``FrameInfo``) in the order frames pass, answers with a
``Verdict`` (drop, delay, duplicate, corrupt, hold, extra frames to send, signals for the server)
and records every fault it applies. The transports do the moving and the waiting.

It tracks the requests in flight in both directions so a response can be matched by the method
and tool of the request it answers, and the ``notifications/cancelled`` a client sends.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from harness.chaos_random import ChaosRandom
from harness.faults.plan import (
    CorruptFault,
    DelayFault,
    DropFault,
    DuplicateFault,
    FrameMatch,
    FreezeFault,
    GarbageFault,
    KillFault,
    LateResponseFault,
    UnknownIdFault,
)
from harness.faults.records import FaultRecorder
from harness.faults.shared_counts import SharedCounts

__all__ = [
    "FrameEngine",
    "FrameInfo",
    "Inject",
    "Signal",
    "Verdict",
    "classify_call",
    "encode",
    "info_from_json",
    "opposite",
]

RequestId = int | str

CANCELLED = "notifications/cancelled"


def opposite(direction: str) -> str:
    return "downstream" if direction == "upstream" else "upstream"


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """What the engine needs to know of one frame. ``kind`` is request, notification,
    response or invalid (not JSON-RPC: passed through untouched)."""

    direction: str
    kind: str
    method: str | None = None
    id: RequestId | None = None
    tool: str | None = None
    cancels: RequestId | None = None
    """For ``notifications/cancelled``: the id of the cancelled request."""
    traceparent: str | None = None
    """A request's W3C trace context (``params._meta.traceparent``)."""


def info_from_json(obj: object, direction: str) -> FrameInfo:
    """Classify a decoded JSON-RPC message (a dict); anything else is ``invalid``."""
    if not isinstance(obj, Mapping):
        return FrameInfo(direction, "invalid")
    method = obj.get("method")
    ident = obj.get("id")
    if not isinstance(ident, int | str) or isinstance(ident, bool):
        ident = None
    params = obj.get("params")
    if isinstance(method, str):
        return classify_call(direction, method, ident, params)
    if "result" in obj or "error" in obj:
        return FrameInfo(direction, "response", id=ident)
    return FrameInfo(direction, "invalid")


def classify_call(direction: str, method: str, ident: object, params: object) -> FrameInfo:
    """A request or notification from its method, id and params."""
    if not isinstance(ident, int | str) or isinstance(ident, bool):
        ident = None
    tool = cancels = traceparent = None
    if isinstance(params, Mapping):
        if method == "tools/call" and isinstance(params.get("name"), str):
            tool = params["name"]
        elif method == CANCELLED:
            request = params.get("requestId")
            cancels = request if isinstance(request, int | str) else None
        meta = params.get("_meta")
        if isinstance(meta, Mapping) and isinstance(meta.get("traceparent"), str):
            traceparent = meta["traceparent"]
    kind = "notification" if ident is None else "request"
    return FrameInfo(direction, kind, method, ident, tool, cancels, traceparent)


@dataclass(frozen=True, slots=True)
class Inject:
    """A frame to send in ``stream``: ``message`` (JSON-RPC dict) or ``raw`` bytes (garbage)."""

    stream: str
    message: dict[str, Any] | None = None
    raw: bytes | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """Something to do to the server: ``kill`` (SIGKILL, SIGTERM, close_stdin) or ``freeze``."""

    action: str
    signal: str | None = None
    seconds: float = 0.0
    after: float = 0.0
    """Wait this long before acting."""


@dataclass(slots=True)
class Verdict:
    """What to do with one frame.

    ``corrupt`` is the fraction of the frame to keep (the rest is cut off); ``hold`` keeps the
    frame until ``release`` names its request id; ``after`` runs once the frame was delivered.
    """

    drop: bool = False
    delay: float = 0.0
    copies: int = 0
    corrupt: float | None = None
    hold: RequestId | None = None
    release: list[tuple[RequestId, float]] = field(default_factory=list)
    after: list[Inject | Signal] = field(default_factory=list)

    @property
    def untouched(self) -> bool:
        return (
            not self.drop
            and self.delay == 0.0
            and not self.copies
            and self.corrupt is None
            and self.hold is None
            and not self.release
            and not self.after
        )


_PASS = Verdict()


@dataclass(slots=True)
class _State:
    fault: Any
    rng: ChaosRandom
    seen: int = 0
    hits: int = 0

    def exhausted(self) -> bool:
        match = getattr(self.fault, "match", None)
        if match is not None and match.nth is not None:
            return self.hits >= 1
        count: int | str = self.fault.count
        return isinstance(count, int) and self.hits >= count


class FrameEngine:
    """Applies frame and process faults of one connection (``target`` names the server)."""

    def __init__(
        self,
        faults: Iterable[Any],
        *,
        target: str,
        rng: ChaosRandom,
        recorder: FaultRecorder,
        connection: int | None = None,
        shared: SharedCounts | None = None,
    ) -> None:
        self._target = target
        # Counts kept with other processes of the same target (live: one per interposer).
        self._shared = shared
        self._rng = rng
        self._recorder = recorder
        self._connection = connection
        self._states: dict[str, _State] = {}
        # (direction of the request, id) -> (method, tool, traceparent)
        self._requests: dict[tuple[str, RequestId], tuple[str, str | None, str | None]] = {}
        self._issued: set[RequestId] = set()
        # Requests hit by late_response: their response waits for the client's cancel.
        self._late: dict[RequestId, LateResponseFault] = {}
        self._held: set[RequestId] = set()
        self._late_trace: dict[RequestId, str | None] = {}
        self._cancelled: set[RequestId] = set()
        for fault in faults:
            self.add(fault)

    def for_connection(self, connection: int) -> FrameEngine:
        """An engine for another connection to the same target: it tracks that connection's
        requests but shares the faults and their counts, so a fault hits ``count`` frames per
        target, not per connection (a reconnect is not killed again by a one-shot kill)."""
        engine = FrameEngine(
            (), target=self._target, rng=self._rng, recorder=self._recorder, connection=connection
        )
        engine._states = self._states
        engine._shared = self._shared
        return engine

    @property
    def faults(self) -> list[Any]:
        return [state.fault for state in self._states.values()]

    @property
    def active(self) -> bool:
        """Whether any fault is installed (without faults frames need no inspection)."""
        return bool(self._states)

    def add(self, fault: Any) -> None:
        """Install a fault (replacing one of the same name)."""
        self._states[fault.name] = _State(fault, self._rng.fork(f"fault-{fault.name}"))

    def remove(self, name: str) -> Any | None:
        state = self._states.pop(name, None)
        return state.fault if state is not None else None

    def timed(self) -> list[Any]:
        """Faults triggered by time (``at``), earliest first."""
        faults = [
            s.fault for s in self._states.values() if getattr(s.fault, "at", None) is not None
        ]
        return sorted(faults, key=lambda f: f.at)

    def fire_timed(self, name: str) -> list[Inject | Signal]:
        """The actions of timed fault ``name`` when its time has come (none if removed or
        drawn out)."""
        state = self._states.get(name)
        if state is None:
            return []
        with self._counting():
            return self._fire(state)

    def _fire(self, state: _State) -> list[Inject | Signal]:
        if state.exhausted():
            return []
        draw = self._draw(state)
        if draw is None:
            return []
        state.hits += 1
        actions = self._actions(state)
        self._record(state.fault, None, trigger=state.fault.trigger(), draw=draw)
        return actions

    def on_frame(self, info: FrameInfo) -> Verdict:
        """Decide about one frame; call in the order frames pass, before delivering."""
        if info.kind == "invalid":
            return _PASS
        method, tool, traceparent = info.method, info.tool, info.traceparent
        if info.kind == "request" and info.id is not None and method is not None:
            self._requests[(info.direction, info.id)] = (method, tool, traceparent)
            if info.direction == "upstream":
                self._issued.add(info.id)
        elif info.kind == "response" and info.id is not None:
            known = self._requests.pop((opposite(info.direction), info.id), None)
            if known is not None:
                method, tool, traceparent = known
        if not self._states and not self._late:
            return _PASS
        verdict = Verdict()
        if info.kind == "response" and info.direction == "downstream" and info.id in self._late:
            self._late_response(info, verdict)
        elif info.method == CANCELLED and info.direction == "upstream":
            self._late_cancel(info, verdict)
        candidates = [s for s in self._states.values() if _candidate(s, info, method, tool)]
        if not candidates:
            return verdict
        with self._counting():
            for state in candidates:
                self._count(state, info, verdict, method, tool, traceparent)
        return verdict

    def _counting(self) -> contextlib.AbstractContextManager[None]:
        """Decide with the counts shared with the target's other processes, if any."""
        if self._shared is None:
            return contextlib.nullcontext()
        return self._shared.hold(self._states)

    def _count(
        self,
        state: _State,
        info: FrameInfo,
        verdict: Verdict,
        method: str | None,
        tool: str | None,
        traceparent: str | None,
    ) -> None:
        if state.exhausted():
            return  # another process of this target used it up
        state.seen += 1
        nth = state.fault.match.nth
        if nth is not None and state.seen != nth:
            return
        draw = self._draw(state)
        if draw is None:
            return
        state.hits += 1
        self._apply(state, info, verdict, method, tool, draw, traceparent)

    # -- internals ---------------------------------------------------------------------------

    def _draw(self, state: _State) -> float | None:
        """The seeded draw for a candidate (``None``: not hit). Always drawn, so the record
        shows the draw that decided, even at probability 1."""
        draw = state.rng.random()
        return round(draw, 6) if draw < state.fault.probability else None

    def _apply(
        self,
        state: _State,
        info: FrameInfo,
        verdict: Verdict,
        method: str | None,
        tool: str | None,
        draw: float,
        traceparent: str | None,
    ) -> None:
        fault = state.fault
        details: dict[str, Any] = {}
        if isinstance(fault, DropFault):
            verdict.drop = True
        elif isinstance(fault, DelayFault):
            verdict.delay = max(verdict.delay, fault.seconds)
            details["seconds"] = fault.seconds
        elif isinstance(fault, DuplicateFault):
            verdict.copies += fault.copies
            details["copies"] = fault.copies
        elif isinstance(fault, CorruptFault):
            verdict.corrupt = round(state.rng.uniform(0.1, 0.9), 6)
            details["keep_fraction"] = verdict.corrupt
        elif isinstance(fault, LateResponseFault):
            if info.id is not None:
                self._late[info.id] = fault
                self._late_trace[info.id] = traceparent
            details["delay"] = fault.delay
        else:
            verdict.after.extend(self._actions(state))
            if isinstance(fault, KillFault):
                details["signal"] = fault.signal
            elif isinstance(fault, FreezeFault):
                details["seconds"] = fault.seconds
            if isinstance(fault, KillFault | FreezeFault) and fault.after:
                details["after"] = fault.after
        self._record(
            fault,
            info,
            trigger=fault.match.describe(),
            draw=draw,
            traceparent=traceparent,
            method=method,
            tool=tool,
            **details,
        )

    def _actions(self, state: _State) -> list[Inject | Signal]:
        fault, rng = state.fault, state.rng
        after = getattr(fault, "after", 0.0) if getattr(fault, "match", None) else 0.0
        if isinstance(fault, KillFault):
            return [Signal("kill", signal=fault.signal, after=after)]
        if isinstance(fault, FreezeFault):
            return [Signal("freeze", seconds=fault.seconds, after=after)]
        if isinstance(fault, GarbageFault):
            raw = bytes(rng.randint(0, 255) for _ in range(fault.size))
            # A leading 0xFF is never valid UTF-8, so the line can never parse as JSON.
            raw = b"\xff" + raw.replace(b"\n", b"?")[1:]
            return [Inject(fault.stream, raw=raw)]
        if isinstance(fault, UnknownIdFault):
            ident = self._unknown_id(rng)
            message: dict[str, Any] = {"jsonrpc": "2.0", "id": ident}
            if fault.error:
                message["error"] = {"code": -32603, "message": "injected error"}
            else:
                message["result"] = {}
            return [Inject("downstream", message=message)]
        return []

    def _unknown_id(self, rng: ChaosRandom) -> int:
        while True:
            ident = rng.randint(1_000_000_000, 1_999_999_999)
            if ident not in self._issued:
                return ident

    def _late_response(self, info: FrameInfo, verdict: Verdict) -> None:
        assert info.id is not None
        if info.id in self._cancelled:
            # Cancelled before the server answered: the answer is late already.
            self._cancelled.discard(info.id)
            self._late_trace.pop(info.id, None)
            verdict.delay = max(verdict.delay, self._late.pop(info.id).delay)
        else:
            self._held.add(info.id)
            verdict.hold = info.id

    def _late_cancel(self, info: FrameInfo, verdict: Verdict) -> None:
        request = info.cancels
        if request is None or request not in self._late:
            return
        fault = self._late[request]
        # The server must not hear of the cancel, or it would never answer.
        verdict.drop = True
        traceparent = self._late_trace.get(request)
        if request in self._held:
            self._held.discard(request)
            del self._late[request]
            self._late_trace.pop(request, None)
            verdict.release.append((request, fault.delay))
        else:
            self._cancelled.add(request)
        self._record(
            fault,
            info,
            trigger="cancelled",
            draw=None,
            action="released",
            traceparent=traceparent,
            request_id=request,
            delay=fault.delay,
        )

    def _record(
        self,
        fault: Any,
        info: FrameInfo | None,
        *,
        trigger: str,
        draw: float | None,
        action: str = "applied",
        traceparent: str | None = None,
        **details: Any,
    ) -> None:
        if info is not None:
            details.setdefault("request_id", info.id)
            details["frame"] = info.kind
        clean = {k: v for k, v in details.items() if v is not None}
        if isinstance(clean.get("request_id"), int | str):
            clean["request_id"] = str(clean["request_id"])
        self._recorder.record(
            action,
            type=fault.type,
            target=self._target,
            name=fault.name,
            stream=info.direction if info is not None else None,
            trigger=trigger,
            draw=draw,
            connection=self._connection,
            parent=_PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else None,
            **clean,
        )


_PROPAGATOR = TraceContextTextMapPropagator()

# These act on a request (in flight, or to be answered late): other frames never count.
_REQUEST_ONLY = (LateResponseFault, KillFault, FreezeFault)


def _candidate(state: _State, info: FrameInfo, method: str | None, tool: str | None) -> bool:
    """Whether the frame counts for the fault (its counts as known here so far)."""
    fault = state.fault
    if state.exhausted() or not isinstance(fault.match, FrameMatch):
        return False
    if isinstance(fault, _REQUEST_ONLY) and info.kind != "request":
        return False
    return _matches(fault.match, info, method, tool)


def _matches(match: FrameMatch, info: FrameInfo, method: str | None, tool: str | None) -> bool:
    if match.direction != "any" and match.direction != info.direction:
        return False
    if match.kind != "any" and match.kind != info.kind:
        return False
    if match.method is not None and match.method != method:
        return False
    if match.tool is not None and match.tool != tool:
        return False
    return match.id is None or match.id == info.id


def encode(message: Mapping[str, Any]) -> bytes:
    """One newline-delimited JSON-RPC frame."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"
