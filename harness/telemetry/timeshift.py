"""Move a run's trace to the present for a collector, keeping the run's own clock beside.

A sim run's spans are stamped on its virtual clock, from the scenario's ``start`` (a date in
the scenario, not today): Jaeger's default search (the last hour) would not find them. Export
and push therefore shift every timestamp of a run by one offset so that its last span ends
now; durations, order and gaps are unchanged, and each span keeps its recorded start in
``harness.virtual.start_unix_nano``. The run directory's ``trace.jsonl`` is never changed.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from harness.telemetry.semconv import HARNESS_VIRTUAL_START

__all__ = ["shift_to_now", "trace_ids"]


def _spans(traces_data: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for resource_spans in traces_data.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            yield from scope_spans.get("spans", [])


def trace_ids(traces_data: Mapping[str, Any]) -> list[str]:
    """The trace ids of ``traces_data``, the one with the most spans first."""
    counts = Counter(str(span.get("traceId", "")) for span in _spans(traces_data))
    return [trace_id for trace_id, _ in counts.most_common() if trace_id]


def shift_to_now(traces_data: Mapping[str, Any], now_ns: int) -> dict[str, Any]:
    """A copy of ``traces_data`` whose last span ends at ``now_ns``; every span records its
    original start in ``harness.virtual.start_unix_nano``."""
    shifted: dict[str, Any] = copy.deepcopy(dict(traces_data))
    ends = [int(span.get("endTimeUnixNano", 0)) for span in _spans(shifted)]
    if not ends:
        return shifted
    delta = now_ns - max(ends)
    for span in _spans(shifted):
        start = int(span.get("startTimeUnixNano", 0))
        attributes = [
            a for a in span.get("attributes", []) if a.get("key") != HARNESS_VIRTUAL_START
        ]
        attributes.append({"key": HARNESS_VIRTUAL_START, "value": {"intValue": str(start)}})
        span["attributes"] = attributes
        span["startTimeUnixNano"] = str(start + delta)
        span["endTimeUnixNano"] = str(int(span.get("endTimeUnixNano", 0)) + delta)
        for event in span.get("events", []):
            event["timeUnixNano"] = str(int(event.get("timeUnixNano", 0)) + delta)
    return shifted
