"""The view model of a saved run: lanes, intervals, markers, the span tree and the verdicts.

Built from a run directory's files only (``run.json``, ``trace.jsonl``, ``events.jsonl``,
``journal.jsonl``), so the terminal waterfall and the HTML report work on any saved run. Times
are seconds on the run's clock (virtual in sim mode), zero at the run's start.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from harness.errors import ConfigError
from harness.oracles import RunRecord, load_record
from harness.run_file import read_run_file
from harness.telemetry import semconv
from harness.telemetry.otlp_json import FlatSpan
from harness.views._time import RunClock

__all__ = [
    "Interval",
    "Lane",
    "Marker",
    "RunView",
    "SpanRow",
    "VerdictView",
    "build_view",
]

LaneKind = Literal["agent", "server", "faults", "scheduler"]
# An evidence reference: a run record's source ("server:<server>" for a server's) and seq.
Ref = tuple[str, int]

_STATUS_ERROR = 2
_INVOKE_AGENT = "invoke_agent"


@dataclass(frozen=True, slots=True)
class Interval:
    """A stretch of time on a lane: an agent's life, an LLM call, a tool call, a connection,
    or an in-flight level (``level`` = calls in flight; for calls, the row they are drawn in)."""

    kind: str
    start: float
    end: float
    label: str
    level: int = 0
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Marker:
    """A point in time on a lane: reconnect, compaction, fault, API error, scope query, ...

    ``evidence_of`` names the oracles that cite this moment; ``deciding`` is true when the
    deciding oracle is one of them."""

    kind: str
    time: float
    label: str
    error: bool = False
    ref: Ref | None = None
    evidence_of: tuple[str, ...] = ()
    deciding: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Lane:
    """One swimlane: an agent (key = agent id), an MCP server, the faults or the scheduler."""

    kind: LaneKind
    key: str
    name: str
    parent: str | None = None
    intervals: list[Interval] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    # A server lane's most calls in flight at once (an instant counts: virtual time has many).
    peak: int = 0

    def of_kind(self, kind: str) -> list[Interval]:
        return [i for i in self.intervals if i.kind == kind]

    def markers_of(self, kind: str) -> list[Marker]:
        return [m for m in self.markers if m.kind == kind]


@dataclass(frozen=True, slots=True)
class SpanRow:
    """One span of the tree, in depth-first order, with its lane and category."""

    span_id: str
    depth: int
    name: str
    category: str
    start: float
    end: float
    error: str | None
    agent: str | None
    server: str | None
    deciding: bool
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VerdictView:
    name: str
    verdict: str
    explanation: str
    evidence: list[dict[str, Any]]
    deciding: bool


@dataclass(slots=True)
class RunView:
    """Everything the views draw."""

    meta: dict[str, Any]
    start: float
    end: float
    lanes: list[Lane]
    spans: list[SpanRow]
    verdicts: list[VerdictView]
    api_errors: list[dict[str, Any]]

    def lane(self, kind: LaneKind, name: str) -> Lane:
        for lane in self.lanes:
            if lane.kind == kind and (lane.name == name or lane.key == name):
                return lane
        raise KeyError(f"no {kind} lane {name!r}")

    def lanes_of(self, kind: LaneKind) -> list[Lane]:
        return [lane for lane in self.lanes if lane.kind == kind]

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def deciding(self) -> VerdictView | None:
        return next((v for v in self.verdicts if v.deciding), None)

    @property
    def clock(self) -> RunClock:
        """How the run's moments read (time of day on the scenario's clock for long runs)."""
        return RunClock.of(self.meta.get("start"), self.end)


# -- reading ---------------------------------------------------------------------------------


def _read_meta(run_dir: Path) -> dict[str, Any]:
    return read_run_file(run_dir).meta()


def _time_scale(meta: dict[str, Any]) -> float:
    """Real seconds per run-clock second: a live run's spans are in real time, its events in
    scenario time (``--time-scale``); a sim run's spans are on the virtual clock already."""
    scale = (meta.get("stats") or {}).get("time_scale")
    if meta.get("mode") == "live" and isinstance(scale, int | float) and scale > 0:
        return float(scale)
    return 1.0


def _offset_ns(meta: dict[str, Any], record: RunRecord, scale: float) -> int:
    """Span time (ns) of the run clock's zero: where event ``time`` 0.0 lies on the span axis.

    Anchored on an agent that appears both as an ``agent_started`` event and as an
    ``invoke_agent`` span (works for sim and live runs alike); else the scenario's start."""
    starts = {
        s["attributes"].get(semconv.GEN_AI_AGENT_ID): s["start_ns"]
        for s in record.spans
        if s["name"].startswith(_INVOKE_AGENT)
    }
    for event in record.runtime("agent_started"):
        span_start = starts.get(event.get("agent_id"))
        if span_start is not None:
            return int(span_start - round(float(event.get("time", 0.0)) * scale * 1e9))
    start = (meta.get("scenario_definition") or {}).get("start")
    if isinstance(start, str):
        try:
            return int(datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp() * 1e9)
        except ValueError:
            pass
    return min((s["start_ns"] for s in record.spans), default=0)


def _evidence_refs(item: dict[str, Any]) -> Ref | None:
    if isinstance(item.get("journal_seq"), int):
        return ("api", item["journal_seq"])
    if isinstance(item.get("seq"), int):
        return _ref(item)
    return None


def _ref(row: dict[str, Any]) -> Ref:
    """A run record's reference: a server's ``seq`` counts that server's records only."""
    source = str(row.get("source", "runtime"))
    if source == "server":
        source = f"server:{row.get('server')}"
    return (source, int(row.get("seq", -1)))


def _verdicts(meta: dict[str, Any]) -> list[VerdictView]:
    deciding = meta.get("deciding_oracle")
    out = []
    for raw in meta.get("oracles") or []:
        if not isinstance(raw, dict):
            continue
        evidence = [e for e in raw.get("evidence") or [] if isinstance(e, dict)]
        out.append(
            VerdictView(
                name=str(raw.get("name", "?")),
                verdict=str(raw.get("verdict", "?")),
                explanation=str(raw.get("explanation", "")),
                evidence=evidence,
                deciding=raw.get("name") == deciding,
            )
        )
    return out


# -- building --------------------------------------------------------------------------------


class _Builder:
    def __init__(self, meta: dict[str, Any], record: RunRecord) -> None:
        self.meta = meta
        self.record = record
        self.scale = _time_scale(meta)
        self.offset = _offset_ns(meta, record, self.scale)
        self.verdicts = _verdicts(meta)
        self.cited: dict[Ref, list[str]] = {}
        self.deciding_refs: set[Ref] = set()
        for verdict in self.verdicts:
            for item in verdict.evidence:
                ref = _evidence_refs(item)
                if ref is None:
                    continue
                self.cited.setdefault(ref, []).append(verdict.name)
                if verdict.deciding:
                    self.deciding_refs.add(ref)
        self.by_id = {s["span_id"]: s for s in record.spans}
        self.lanes: dict[tuple[str, str], Lane] = {}

    def t(self, ns: int) -> float:
        return round((ns - self.offset) / 1e9 / self.scale, 9)

    def lane(self, kind: LaneKind, key: str, name: str | None = None) -> Lane:
        found = self.lanes.get((kind, key))
        if found is None:
            found = self.lanes[(kind, key)] = Lane(kind=kind, key=key, name=name or key)
        return found

    def marker(
        self, kind: str, time: float, label: str, *, error: bool, ref: Ref | None, detail: Any
    ) -> Marker:
        cited = tuple(self.cited.get(ref, ())) if ref else ()
        return Marker(
            kind=kind,
            time=time,
            label=label,
            error=error,
            ref=ref,
            evidence_of=cited,
            deciding=ref in self.deciding_refs if ref else False,
            detail=_plain(detail),
        )

    # spans ----------------------------------------------------------------------------------

    def agent_of(self, span: FlatSpan) -> FlatSpan | None:
        seen = 0
        node: FlatSpan | None = span
        while node is not None and seen < 10_000:
            if node["name"].startswith(_INVOKE_AGENT):
                return node
            node = self.by_id.get(node["parent_id"] or "")
            seen += 1
        return None

    def agent_lanes(self) -> None:
        for span in self.record.spans:
            if not span["name"].startswith(_INVOKE_AGENT):
                continue
            attrs = span["attributes"]
            key = str(attrs.get(semconv.GEN_AI_AGENT_ID) or span["span_id"])
            lane = self.lane("agent", key, str(attrs.get(semconv.GEN_AI_AGENT_NAME) or "agent"))
            parent = attrs.get(semconv.HARNESS_AGENT_PARENT)
            lane.parent = str(parent) if parent is not None else None
            lane.intervals.append(
                Interval(
                    "agent",
                    self.t(span["start_ns"]),
                    self.t(span["end_ns"]),
                    lane.name,
                    error=_span_error(span),
                    detail=_plain(attrs),
                )
            )
        for span in self.record.spans:
            attrs = span["attributes"]
            op = attrs.get(semconv.GEN_AI_OPERATION_NAME)
            if span["scope"] == "mcp-python-sdk" or op not in ("chat", "execute_tool"):
                continue
            owner = self.agent_of(span)
            if owner is None:
                continue
            key = str(owner["attributes"].get(semconv.GEN_AI_AGENT_ID) or owner["span_id"])
            lane = self.lanes[("agent", key)]
            if op == "chat":
                label = f"chat {attrs.get(semconv.GEN_AI_REQUEST_MODEL, '')}".strip()
                kind = "chat"
            else:
                label = str(attrs.get(semconv.GEN_AI_TOOL_NAME, "tool"))
                kind = "tool"
            lane.intervals.append(
                Interval(
                    kind,
                    self.t(span["start_ns"]),
                    self.t(span["end_ns"]),
                    label,
                    error=_span_error(span),
                    detail=_plain(attrs),
                )
            )

    def agent_lane_named(self, name: Any, time: float) -> Lane:
        """The lane of the agent called ``name`` alive at ``time`` (names can repeat)."""
        candidates = [lane for lane in self.lanes_of("agent") if lane.name == name]
        for lane in candidates:
            life = lane.of_kind("agent")
            if any(i.start <= time <= i.end for i in life):
                return lane
        if candidates:
            return candidates[0]
        return self.lane("agent", f"name:{name}", str(name))

    def lanes_of(self, kind: LaneKind) -> list[Lane]:
        return [lane for (k, _), lane in self.lanes.items() if k == kind]

    def server_calls(self) -> None:
        """One interval per MCP request on the wire (a tool call that retried has several)."""
        sends: dict[str, list[FlatSpan]] = {}
        for span in self.record.spans:
            if span["name"].startswith("MCP send tools/call") and span["parent_id"]:
                sends.setdefault(span["parent_id"], []).append(span)
        for span in self.record.spans:
            attrs = span["attributes"]
            server = attrs.get(semconv.HARNESS_MCP_SERVER)
            if attrs.get(semconv.GEN_AI_OPERATION_NAME) != "execute_tool" or not server:
                continue
            owner = self.agent_of(span)
            agent = owner["attributes"].get(semconv.GEN_AI_AGENT_NAME) if owner else None
            tool = attrs.get(semconv.GEN_AI_TOOL_NAME, "tool")
            requests = sorted(sends.get(span["span_id"], []), key=lambda s: s["start_ns"])
            tool_error = _span_error(span)
            for n, request in enumerate(requests or [span]):
                # The tool's error (e.g. ``connection_closed``) belongs to its last request.
                last = n == len(requests) - 1 or not requests
                error = tool_error if last and tool_error else _request_error(request)
                self.lane("server", str(server)).intervals.append(
                    Interval(
                        "call",
                        self.t(request["start_ns"]),
                        self.t(request["end_ns"]),
                        f"{agent}: {tool}" if agent else str(tool),
                        error=error,
                        detail=_plain({**attrs, **request["attributes"], "agent": agent}),
                    )
                )
        for lane in self.lanes_of("server"):
            _assign_rows(lane)

    def fault_spans(self) -> None:
        for span in self.record.spans:
            if span["name"] != semconv.HARNESS_FAULT:
                continue
            attrs = span["attributes"]
            label = " ".join(
                str(attrs[k])
                for k in (semconv.HARNESS_FAULT_ACTION, semconv.HARNESS_FAULT_TYPE)
                if k in attrs
            )
            target = attrs.get(semconv.HARNESS_FAULT_TARGET)
            lane = self.lane("faults", "faults")
            lane.markers.append(
                self.marker(
                    "fault",
                    self.t(span["start_ns"]),
                    f"{label} → {target}" if target else label or "fault",
                    error=True,
                    ref=None,
                    detail=attrs,
                )
            )

    # events ---------------------------------------------------------------------------------

    def runtime_events(self) -> None:
        connections: dict[tuple[str, int], dict[str, Any]] = {}
        levels: dict[str, list[tuple[float, int]]] = {}
        for event in self.record.runtime_events:
            handle = _RUNTIME_EVENTS.get(str(event.get("kind", "")))
            if handle is None:
                continue
            seen = _Seen(
                event=event,
                time=float(event.get("time", 0.0)),
                ref=_ref(event),
                detail={k: v for k, v in event.items() if k != "source"},
                connections=connections,
                levels=levels,
            )
            handle(self, seen)
        end = self.end_time()
        for (server, generation), conn in connections.items():
            self.lane("server", server).intervals.append(
                Interval(
                    "connection",
                    float(conn["start"]),
                    float(conn.get("end", end)),
                    f"generation {generation}",
                    level=generation,
                    detail=_plain(conn),
                )
            )
        for server, steps in levels.items():
            lane = self.lane("server", server)
            lane.peak = max((level for _, level in steps), default=0)
            for (start, level), (stop, _) in zip(steps, [*steps[1:], (end, 0)], strict=True):
                if level > 0 and stop > start:
                    lane.intervals.append(
                        Interval("in_flight", start, stop, f"{level} in flight", level=level)
                    )

    def server_events(self) -> None:
        for server, events in self.record.server_events.items():
            for event in events:
                if event.get("kind") != "crashed":
                    continue
                how = (event.get("detail") or {}).get("how", "crash")
                self.lane("server", server).markers.append(
                    self.marker(
                        "fault",
                        float(event.get("time", 0.0)),
                        f"server crashed ({how}) during {event.get('tool') or event.get('method')}",
                        error=True,
                        ref=_ref(event),
                        detail={k: v for k, v in event.items() if k != "arguments"},
                    )
                )

    def journal(self) -> list[dict[str, Any]]:
        errors = []
        for row in self.record.journal:
            status = row.get("status")
            fault = row.get("fault")
            if not (isinstance(status, int) and status >= 400) and not fault:
                continue
            time = float(row.get("time", 0.0))
            agent = row.get("agent") or self._journal_agent(row)
            error = row.get("error") or {}
            message = error.get("message", "") if isinstance(error, dict) else str(error)
            etype = error.get("type", "") if isinstance(error, dict) else ""
            entry = {
                "seq": row.get("seq"),
                "time": time,
                "agent": agent,
                "status": status,
                "type": etype,
                "message": message,
                "fault": fault,
                "request_id": row.get("request_id"),
            }
            if isinstance(fault, dict):
                entry["fault"] = fault.get("kind") or fault.get("type") or "fault"
            errors.append(entry)
            ref = _ref(row)
            lane = self.agent_lane_named(agent, time) if agent else self.lane("faults", "faults")
            lane.markers.append(
                self.marker(
                    "fault" if fault else "api_error",
                    time,
                    f"API {status} {etype}".strip()
                    + (f" (injected {entry['fault']})" if fault else ""),
                    error=True,
                    ref=ref,
                    detail=entry,
                )
            )
        return errors

    def _journal_agent(self, row: dict[str, Any]) -> Any:
        """The agent of a journal row that does not name one, through its ``traceparent``."""
        parts = str(row.get("traceparent") or "").split("-")
        span = self.by_id.get(parts[2]) if len(parts) == 4 else None
        owner = self.agent_of(span) if span else None
        return owner["attributes"].get(semconv.GEN_AI_AGENT_NAME) if owner else None

    # span tree -------------------------------------------------------------------------------

    def span_rows(self) -> list[SpanRow]:
        children: dict[str | None, list[FlatSpan]] = {}
        for span in self.record.spans:
            parent = span["parent_id"] if span["parent_id"] in self.by_id else None
            children.setdefault(parent, []).append(span)
        decisive = self._deciding_span_ids()
        rows: list[SpanRow] = []
        stack: list[tuple[FlatSpan, int]] = [(s, 0) for s in reversed(children.get(None, []))]
        while stack:
            span, depth = stack.pop()
            attrs = span["attributes"]
            owner = self.agent_of(span)
            rows.append(
                SpanRow(
                    span_id=span["span_id"],
                    depth=depth,
                    name=span["name"],
                    category=_category(span),
                    start=self.t(span["start_ns"]),
                    end=self.t(span["end_ns"]),
                    error=_span_error(span),
                    agent=owner["attributes"].get(semconv.GEN_AI_AGENT_NAME) if owner else None,
                    server=attrs.get(semconv.HARNESS_MCP_SERVER),
                    deciding=span["span_id"] in decisive,
                    attributes=_plain(attrs),
                )
            )
            stack.extend((c, depth + 1) for c in reversed(children.get(span["span_id"], [])))
        return rows

    def _deciding_span_ids(self) -> set[str]:
        """Spans that stand for a deciding evidence event (same kind, place and values)."""
        wanted = [e for e in self.record.runtime_events if _ref(e) in self.deciding_refs]
        ids: set[str] = set()
        for event in wanted:
            for span in self.record.spans:
                if self.t(span["start_ns"]) != float(event.get("time", -1)):
                    continue
                if _span_matches_event(span, event):
                    ids.add(span["span_id"])
        for row in self.record.journal:
            if _ref(row) in self.deciding_refs:
                parts = str(row.get("traceparent") or "").split("-")
                if len(parts) == 4 and parts[2] in self.by_id:
                    ids.add(parts[2])
        return ids

    def end_time(self) -> float:
        times = [self.t(s["end_ns"]) for s in self.record.spans]
        times += [float(e.get("time", 0.0)) for e in self.record.runtime_events]
        virtual = self.meta.get("virtual_s")
        if isinstance(virtual, int | float):
            times.append(float(virtual))
        return max(times, default=0.0)

    def start_time(self) -> float:
        times = [self.t(s["start_ns"]) for s in self.record.spans]
        times += [float(e.get("time", 0.0)) for e in self.record.runtime_events]
        return min(times, default=0.0)

    def build(self) -> RunView:
        self.agent_lanes()
        self.server_calls()
        self.runtime_events()
        self.server_events()
        api_errors = self.journal()
        self.fault_spans()
        for lane in self.lanes.values():
            lane.intervals.sort(key=lambda i: (i.start, i.end))
            lane.markers.sort(key=lambda m: (m.time, m.ref or ("", -1)))
        order = {"agent": 0, "server": 1, "faults": 2, "scheduler": 3}
        lanes = sorted(
            self.lanes.values(),
            key=lambda lane: (order[lane.kind], _first_start(lane), lane.name),
        )
        return RunView(
            meta=_summary(self.meta),
            start=self.start_time(),
            end=self.end_time(),
            lanes=_agent_tree_order(lanes),
            spans=self.span_rows(),
            verdicts=self.verdicts,
            api_errors=api_errors,
        )


@dataclass(slots=True)
class _Seen:
    """One runtime event as a view handler reads it, with the state handlers share: the
    connections by (server, generation) and each server's in-flight level over time."""

    event: dict[str, Any]
    time: float
    ref: Ref
    detail: dict[str, Any]
    connections: dict[tuple[str, int], dict[str, Any]]
    levels: dict[str, list[tuple[float, int]]]

    @property
    def server(self) -> str | None:
        server = self.event.get("server")
        return str(server) if server else None


def _in_flight(b: _Builder, e: _Seen) -> None:
    if e.server:
        e.levels.setdefault(e.server, []).append((e.time, int(e.event.get("in_flight", 0))))


def _connecting(b: _Builder, e: _Seen) -> None:
    if e.server:
        generation = int(e.event.get("generation", 0))
        e.connections[(e.server, generation)] = {"start": e.time, **e.detail}


def _connected(b: _Builder, e: _Seen) -> None:
    if e.server:
        key = (e.server, int(e.event.get("generation", 0)))
        e.connections.setdefault(key, {"start": e.time, **e.detail})
        e.connections[key]["connected"] = e.time


def _reconnect(b: _Builder, e: _Seen) -> None:
    if not e.server:
        return
    decision = str(e.event.get("decision", "?"))
    for (name, generation), conn in e.connections.items():
        if name == e.server and generation == e.event.get("generation") and decision == "performed":
            conn.setdefault("end", e.time)
    b.lane("server", e.server).markers.append(
        b.marker(
            "reconnect",
            e.time,
            f"reconnect {decision} ({e.event.get('reason', '?')}, "
            f"in flight {e.event.get('in_flight', '?')})",
            error=decision == "performed" and bool(e.event.get("in_flight")),
            ref=e.ref,
            detail=e.detail,
        )
    )


def _connect_failed(b: _Builder, e: _Seen) -> None:
    if e.server:
        b.lane("server", e.server).markers.append(
            b.marker(
                "connect_failed", e.time, "connect failed", error=True, ref=e.ref, detail=e.detail
            )
        )


def _connections_at_close(b: _Builder, e: _Seen) -> None:
    orphans = int(e.event.get("orphans", 0) or 0)
    if e.server and (orphans or e.ref in b.cited):
        b.lane("server", e.server).markers.append(
            b.marker(
                "leak",
                e.time,
                f"{orphans} orphaned connection(s) at close",
                error=orphans > 0,
                ref=e.ref,
                detail=e.detail,
            )
        )


def _compaction(b: _Builder, e: _Seen) -> None:
    outcome = e.event.get("outcome", "?")
    open_calls = e.event.get("open_tool_calls") or []
    b.agent_lane_named(e.event.get("agent"), e.time).markers.append(
        b.marker(
            "compaction",
            e.time,
            f"compaction {outcome}"
            + (f" with {len(open_calls)} open tool call(s)" if open_calls else ""),
            error=bool(open_calls) and outcome == "compacted",
            ref=e.ref,
            detail=e.detail,
        )
    )


def _agent_error(b: _Builder, e: _Seen) -> None:
    kind = str(e.event.get("kind"))
    text = e.event.get("error_type") or e.event.get("reason") or kind
    b.agent_lane_named(e.event.get("agent"), e.time).markers.append(
        b.marker(kind, e.time, f"{kind}: {text}", error=True, ref=e.ref, detail=e.detail)
    )


def _scoped_query(b: _Builder, e: _Seen) -> None:
    explicit = bool(e.event.get("explicit"))
    b.agent_lane_named(e.event.get("agent"), e.time).markers.append(
        b.marker(
            "scope",
            e.time,
            f"{e.event.get('tool', 'query')} scope={e.event.get('scope')}"
            + ("" if explicit else " (implicit)"),
            error=not explicit and bool(e.event.get("automated")),
            ref=e.ref,
            detail=e.detail,
        )
    )


def _task_fired(b: _Builder, e: _Seen) -> None:
    b.lane("scheduler", "scheduler").markers.append(
        b.marker(
            "task",
            e.time,
            f"task {e.event.get('task')} fired in {e.event.get('context_id')}",
            error=False,
            ref=e.ref,
            detail=e.detail,
        )
    )


# What the views draw for each kind of runtime event (harness.runtime.events); other kinds
# appear in the event table only.
_RUNTIME_EVENTS: dict[str, Callable[[_Builder, _Seen], None]] = {
    "call_started": _in_flight,
    "call_ended": _in_flight,
    "connecting": _connecting,
    "connected": _connected,
    "reconnect": _reconnect,
    "connect_failed": _connect_failed,
    "connections_at_close": _connections_at_close,
    "compaction": _compaction,
    "llm_error": _agent_error,
    "scope_refused": _agent_error,
    "scoped_query": _scoped_query,
    "task_fired": _task_fired,
}


def _first_start(lane: Lane) -> float:
    return min(
        [i.start for i in lane.intervals] + [m.time for m in lane.markers], default=float("inf")
    )


def _agent_tree_order(lanes: list[Lane]) -> list[Lane]:
    """Agents in tree order (a subagent right under its parent); other lanes as sorted.

    Linear in the number of agents (a run may have thousands): children are grouped by parent
    name once, and the tree is walked with an explicit stack (it may be deeper than Python's
    recursion limit). Agents whose parents form a cycle follow at the end, in lane order."""
    agents = [lane for lane in lanes if lane.kind == "agent"]
    names = {lane.name for lane in agents}
    children: dict[str | None, list[Lane]] = {}
    for lane in agents:
        children.setdefault(lane.parent if lane.parent in names else None, []).append(lane)
    placed: list[Lane] = []
    seen: set[int] = set()
    expanded: set[str] = set()
    stack = list(reversed(children.get(None, [])))
    while stack:
        lane = stack.pop()
        if id(lane) in seen:
            continue
        seen.add(id(lane))
        placed.append(lane)
        if lane.name not in expanded:
            expanded.add(lane.name)
            stack.extend(reversed(children.get(lane.name, [])))
    placed += [lane for lane in agents if id(lane) not in seen]
    return placed + [lane for lane in lanes if lane.kind != "agent"]


def _assign_rows(lane: Lane) -> None:
    """Give each call the first row where it does not overlap an earlier call."""
    rows_end: list[float] = []
    placed = []
    for call in sorted(lane.intervals, key=lambda i: (i.start, i.end)):
        if call.kind != "call":
            placed.append(call)
            continue
        row = next((n for n, end in enumerate(rows_end) if end <= call.start), len(rows_end))
        if row == len(rows_end):
            rows_end.append(call.end)
        else:
            rows_end[row] = call.end
        placed.append(
            Interval(call.kind, call.start, call.end, call.label, row, call.error, call.detail)
        )
    lane.intervals = placed


def _span_error(span: FlatSpan) -> str | None:
    attrs = span["attributes"]
    if span["status"] == _STATUS_ERROR or semconv.ERROR_TYPE in attrs:
        return str(attrs.get(semconv.ERROR_TYPE) or span.get("status_message") or "error")
    return None


def _request_error(span: FlatSpan) -> str | None:
    if span["status"] != _STATUS_ERROR:
        return None
    for event in span["events"]:
        if event["name"] == "exception":
            return str(event["attributes"].get("exception.type") or "error")
    return _span_error(span)


def _category(span: FlatSpan) -> str:
    name = span["name"]
    if name == semconv.HARNESS_MCP_RECONNECT:
        return "reconnect"
    if name == semconv.HARNESS_COMPACTION:
        return "compaction"
    if name == semconv.HARNESS_FAULT:
        return "fault"
    op = span["attributes"].get(semconv.GEN_AI_OPERATION_NAME)
    if name.startswith(_INVOKE_AGENT):
        return "agent"
    if span["scope"] == "mcp-python-sdk" or semconv.MCP_METHOD_NAME in span["attributes"]:
        return "mcp"
    if op == "chat":
        return "chat"
    if op == "execute_tool":
        return "tool"
    if semconv.HTTP_REQUEST_METHOD in span["attributes"]:
        return "http"
    return "other"


_EVENT_SPAN_KEYS = {
    "reconnect": (
        semconv.HARNESS_MCP_RECONNECT,
        {
            "server": semconv.HARNESS_MCP_SERVER,
            "reason": semconv.HARNESS_RECONNECT_REASON,
            "in_flight": semconv.HARNESS_MCP_IN_FLIGHT,
            "generation": semconv.HARNESS_MCP_GENERATION,
        },
    ),
    "compaction": (
        semconv.HARNESS_COMPACTION,
        {"agent": semconv.GEN_AI_AGENT_NAME, "outcome": semconv.HARNESS_COMPACTION_OUTCOME},
    ),
}


def _span_matches_event(span: FlatSpan, event: dict[str, Any]) -> bool:
    spec = _EVENT_SPAN_KEYS.get(str(event.get("kind")))
    if spec is None or span["name"] != spec[0]:
        return False
    attrs = span["attributes"]
    return all(attrs.get(attr) == event.get(key) for key, attr in spec[1].items() if key in event)


def _plain(value: Any) -> Any:
    """A JSON-safe copy (lists for tuples, strings for anything exotic)."""
    return json.loads(json.dumps(value, default=str))


_SUMMARY_KEYS = (
    "scenario",
    "policy",
    "seed",
    "mode",
    "strategy",
    "outcome",
    "expected",
    "met",
    "deciding_oracle",
    "explanation",
    "error",
    "virtual_s",
    "wall_s",
    "hung",
    "interrupted",
    "replay",
    "pending",
    "leaked",
)


def _summary(meta: dict[str, Any]) -> dict[str, Any]:
    out = {key: meta.get(key) for key in _SUMMARY_KEYS}
    definition = meta.get("scenario_definition") or {}
    out["description"] = definition.get("description") if isinstance(definition, dict) else None
    out["start"] = definition.get("start") if isinstance(definition, dict) else None
    return _plain(out)  # type: ignore[no-any-return]


def build_view(run_dir: Path) -> RunView:
    """The view model of the run saved in ``run_dir``; a bad directory is a ``ConfigError``."""
    run_dir = Path(run_dir)
    meta = _read_meta(run_dir)
    record = load_record(run_dir)
    try:
        return _Builder(meta, record).build()
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        # The files parsed but hold values of the wrong shape (hand-edited or foreign).
        raise ConfigError(
            f"the run's files hold a value the views cannot read ({type(exc).__name__}: {exc})",
            path=run_dir,
        ) from None


def iter_markers(view: RunView) -> Iterable[tuple[Lane, Marker]]:
    for lane in view.lanes:
        for marker in lane.markers:
            yield lane, marker
