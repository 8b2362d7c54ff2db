"""A ``RunRecord`` rebuilt from a trace alone, for ``harness check trace.jsonl``.

The harness runtime's spans carry what most oracles read: ``harness.mcp.reconnect`` spans hold
each reconnect decision with the in-flight count, ``harness.compaction`` spans each compaction
with the stop reason and the open tool calls, ``execute_tool`` spans of scoped servers the scope
a query used and whether it was explicit, ``invoke_agent`` spans how each agent stopped, and the
API's spans (or the runtime's ``chat`` spans) every request with its status and error text.
What a trace cannot hold is named in ``RunRecord.missing``, so those oracles answer "cannot
judge": tool calls that never ended (an open span is never exported), the agents' final
answers, the processes left at the end, and the secret values handed out.

Times are seconds on the run's clock: from the origin the run stamped on its resources
(``harness.run.origin_unix_nano``, scaled back by ``harness.time_scale`` in live mode), else
from the trace's first span.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.oracles.record import RunRecord
from harness.telemetry import semconv as sc
from harness.telemetry.otlp_json import FlatSpan, any_value, flatten

__all__ = ["record_from_trace", "resource_attributes"]

_RUNTIME_SCOPE = "harness.runtime"
_API_SCOPE = "fake_servers.anthropic"
_NOT_IN_A_TRACE = {
    "calls": "a trace holds only the tool calls that ended (events.jsonl has every start and end)",
    "result": "a trace has no final answers (run.json has them)",
    "connections": "a trace does not say what was left running (run.json and events.jsonl do)",
    "secrets": "a bare trace does not say which secret values the run handed out",
    "server_events": "a trace holds no fake server records (events.jsonl has them)",
}


def resource_attributes(traces_data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``harness.*`` attributes the run stamped on its resources (first value of each)."""
    out: dict[str, Any] = {}
    for resource_spans in traces_data.get("resourceSpans", []):
        for item in resource_spans.get("resource", {}).get("attributes", []):
            key = str(item.get("key", ""))
            value = any_value(item.get("value", {}))
            if key.startswith("harness.") and key not in out and value is not None:
                out[key] = value
    return out


# The SDK's error text ends with the response body's repr: {... 'message': '...'}}.
_QUOTED_MESSAGE = re.compile(r"""['"]message['"]: (['"])(.*?)\1\}""")


class _Trace:
    def __init__(self, spans: list[FlatSpan], origin_ns: int, scale: float) -> None:
        self.spans = spans
        self.by_id = {s["span_id"]: s for s in spans}
        self._origin = origin_ns
        self._scale = scale

    def time(self, span: FlatSpan) -> float:
        return float((span["start_ns"] - self._origin) / 1e9 / self._scale)

    def agent_of(self, span: FlatSpan) -> FlatSpan | None:
        """The nearest ``invoke_agent`` span up ``span``'s parent chain."""
        seen: set[str] = set()
        node = self.by_id.get(span.get("parent_id") or "")
        while node is not None and node["span_id"] not in seen:
            seen.add(node["span_id"])
            if node["attributes"].get(sc.GEN_AI_OPERATION_NAME) == "invoke_agent":
                return node
            node = self.by_id.get(node.get("parent_id") or "")
        return None

    def error_text(self, span: FlatSpan) -> str:
        """The API's error message, from the error texts a request span and its parent carry
        (status messages, exception events); the SDK's wrapping is taken off."""
        for node in (span, self.by_id.get(span.get("parent_id") or "")):
            if node is None:
                continue
            texts = [str(node.get("status_message") or "")]
            texts += [str(e["attributes"].get("exception.message") or "") for e in node["events"]]
            for text in texts:
                quoted = _QUOTED_MESSAGE.search(text)
                if quoted:
                    return quoted.group(2)
                if text:
                    return text
        return ""


def record_from_trace(traces_data: Mapping[str, Any]) -> RunRecord:
    """The oracles' evidence that a trace holds, and what it cannot hold named in ``missing``."""
    meta = resource_attributes(traces_data)
    spans = flatten(dict(traces_data))
    origin = meta.get(sc.HARNESS_RUN_ORIGIN)
    trace = _Trace(
        spans,
        int(origin) if origin is not None else min((s["start_ns"] for s in spans), default=0),
        float(meta.get(sc.HARNESS_TIME_SCALE, 1.0)) or 1.0,
    )
    record = RunRecord(
        scenario=str(meta.get(sc.HARNESS_SCENARIO, "")),
        policy=str(meta.get(sc.HARNESS_POLICY, "")),
        seed=int(meta.get(sc.HARNESS_SEED, 0)),
        mode=str(meta.get(sc.HARNESS_MODE, "sim")),
        spans=spans,
        missing=dict(_NOT_IN_A_TRACE),
    )
    if not spans:
        record.missing["spans"] = "the trace is empty"
    if any(s["scope"] == _RUNTIME_SCOPE for s in spans):
        _runtime_events(record, trace)
    else:
        why = (
            "the trace has no spans of the harness runtime (instrumentation scope harness.runtime)"
        )
        for key in ("reconnects", "agents", "compactions", "scoped_queries"):
            record.missing[key] = why
    _journal(record, trace)
    record.runtime_events.sort(key=lambda e: e["time"])
    for seq, event in enumerate(record.runtime_events):
        event["seq"] = seq
    return record


def _runtime_events(record: RunRecord, trace: _Trace) -> None:
    events = record.runtime_events
    unmarked = 0
    for span in trace.spans:
        if span["scope"] != _RUNTIME_SCOPE:
            continue
        attrs = span["attributes"]
        base = {"source": "runtime", "time": trace.time(span), "span_id": span["span_id"]}
        if span["name"] == sc.HARNESS_MCP_RECONNECT:
            events.append(
                {
                    **base,
                    "kind": "reconnect",
                    "server": attrs.get(sc.HARNESS_MCP_SERVER),
                    "reason": attrs.get(sc.HARNESS_RECONNECT_REASON),
                    "decision": attrs.get(sc.HARNESS_RECONNECT_DECISION),
                    "in_flight": int(attrs.get(sc.HARNESS_MCP_IN_FLIGHT, 0)),
                    "generation": int(attrs.get(sc.HARNESS_MCP_GENERATION, 0)),
                }
            )
        elif span["name"] == sc.HARNESS_COMPACTION:
            events.append(
                {
                    **base,
                    "kind": "compaction",
                    "agent": attrs.get(sc.GEN_AI_AGENT_NAME),
                    "outcome": attrs.get(sc.HARNESS_COMPACTION_OUTCOME),
                    "stop_reason": attrs.get("harness.compaction.stop_reason") or None,
                    "open_tool_calls": int(attrs.get("harness.compaction.open_tool_calls", 0)),
                }
            )
        elif attrs.get(sc.GEN_AI_OPERATION_NAME) == "invoke_agent":
            agent_id = attrs.get(sc.GEN_AI_AGENT_ID, span["span_id"])
            name = attrs.get(sc.GEN_AI_AGENT_NAME)
            events.append(
                {
                    **base,
                    "kind": "agent_started",
                    "agent": name,
                    "agent_id": agent_id,
                    "parent": attrs.get(sc.HARNESS_AGENT_PARENT),
                    "context_id": attrs.get(sc.HARNESS_CONTEXT_ID),
                    "automated": attrs.get(sc.HARNESS_AGENT_AUTOMATED),
                }
            )
            failed = span["status"] == 2
            events.append(
                {
                    **base,
                    "time": (span["end_ns"] - span["start_ns"]) / 1e9 + base["time"],
                    "kind": "agent_finished",
                    "agent": name,
                    "agent_id": agent_id,
                    "stop": attrs.get("harness.agent.stop", "error" if failed else "end_turn"),
                    "error": span["status_message"] or None,
                    "error_type": attrs.get(sc.ERROR_TYPE),
                }
            )
        elif attrs.get(sc.GEN_AI_OPERATION_NAME) == "execute_tool":
            agent = trace.agent_of(span)
            agent_attrs = agent["attributes"] if agent else {}
            if attrs.get(sc.ERROR_TYPE) == "scope_refused":
                events.append(
                    {
                        **base,
                        "kind": "scope_refused",
                        "agent": agent_attrs.get(sc.GEN_AI_AGENT_NAME),
                        "tool": attrs.get(sc.GEN_AI_TOOL_NAME),
                    }
                )
            elif sc.HARNESS_CONTEXT_ID in attrs:
                if sc.HARNESS_SCOPE_EXPLICIT not in attrs:
                    unmarked += 1
                events.append(
                    {
                        **base,
                        "kind": "scoped_query",
                        "agent": agent_attrs.get(sc.GEN_AI_AGENT_NAME),
                        "tool": attrs.get(sc.GEN_AI_TOOL_NAME),
                        "context_id": agent_attrs.get(sc.HARNESS_CONTEXT_ID),
                        "scope": attrs.get(sc.HARNESS_CONTEXT_ID),
                        "explicit": bool(attrs.get(sc.HARNESS_SCOPE_EXPLICIT)),
                        "automated": bool(attrs.get(sc.HARNESS_AGENT_AUTOMATED)),
                    }
                )
    if unmarked:
        record.missing["scoped_queries"] = (
            f"{unmarked} chat query span(s) do not say whether their scope was explicit "
            f"({sc.HARNESS_SCOPE_EXPLICIT}: a trace from an older harness)"
        )
    orphans = [s for s in trace.spans if s["parent_id"] and s["parent_id"] not in trace.by_id]
    if orphans:
        record.missing["agents"] = (
            f"{len(orphans)} span(s) have a parent that never ended (the first: "
            f"{orphans[0]['name']}): an agent may not have finished"
        )


def _journal(record: RunRecord, trace: _Trace) -> None:
    served = [
        s
        for s in trace.spans
        if s["scope"].startswith(_API_SCOPE) and s["attributes"].get(sc.URL_PATH) == "/v1/messages"
    ]
    requests = served or [
        s
        for s in trace.spans
        if s["scope"] == _RUNTIME_SCOPE
        and s["attributes"].get(sc.GEN_AI_OPERATION_NAME) == sc.GEN_AI_OPERATION_CHAT
    ]
    if not requests:
        record.missing["api_requests"] = "the trace has no spans of API requests"
        return
    for seq, span in enumerate(requests):
        attrs = span["attributes"]
        status = attrs.get(sc.HTTP_RESPONSE_STATUS_CODE)
        if status is None:
            failed = attrs.get(sc.ERROR_TYPE) == "invalid_request_error"
            status = 400 if failed else (500 if span["status"] == 2 else 200)
        parent = trace.by_id.get(span.get("parent_id") or "")
        agent = attrs.get(sc.HARNESS_FAKE_AGENT) or attrs.get(sc.GEN_AI_AGENT_NAME)
        if agent is None and parent is not None:
            agent = parent["attributes"].get(sc.GEN_AI_AGENT_NAME)
        record.journal.append(
            {
                "source": "api",
                "kind": "request",
                "seq": seq,
                "time": trace.time(span),
                "agent": agent,
                "status": int(status),
                "verdict": {"message": trace.error_text(span)},
                "span_id": span["span_id"],
            }
        )
