"""Compare two traces by what they mean, for ``harness replay``.

A sim run's trace is deterministic: the same ids, names, attributes, timestamps, events and
statuses for the same run. What is not part of the run is left out of the comparison: the
exception events' stack traces (absolute paths of the install that recorded the run, and
frames that depend on who called the harness: the command line, the pytest plugin) and the
resource's per-process attributes (flat spans keep only ``service.name``). A run directory
recorded by another install, another virtual environment or the pytest plugin replays as
identical when the run did the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.telemetry.otlp_json import FlatSpan

__all__ = ["MACHINE_SPECIFIC_KEYS", "first_difference", "meaning"]

# Event attributes whose text depends on the machine and the caller, not on the run.
MACHINE_SPECIFIC_KEYS = frozenset({"exception.stacktrace"})


def _event(event: dict[str, Any]) -> dict[str, Any]:
    attributes = {k: v for k, v in event["attributes"].items() if k not in MACHINE_SPECIFIC_KEYS}
    return {**event, "attributes": attributes}


def meaning(spans: Sequence[FlatSpan]) -> list[FlatSpan]:
    """``spans`` without what the comparison leaves out, in a stable order."""
    out = [{**span, "events": [_event(e) for e in span["events"]]} for span in spans]
    out.sort(key=lambda s: (s["start_ns"], s["span_id"]))
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _describe(span: FlatSpan) -> str:
    return f"span {span['name']!r} ({span['span_id']})"


def first_difference(recorded: Sequence[FlatSpan], replayed: Sequence[FlatSpan]) -> str | None:
    """``None`` when the two traces mean the same, else the first difference in words."""
    a, b = meaning(recorded), meaning(replayed)
    for old, new in zip(a, b, strict=False):
        if old == new:
            continue
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) == new.get(key):
                continue
            if key == "attributes":
                first = min(
                    k
                    for k in old[key].keys() | new[key].keys()
                    if old[key].get(k) != new[key].get(k)
                )
                was, now = old[key].get(first), new[key].get(first)
                return f"{_describe(old)}: attribute {first} was {_short(was)}, is {_short(now)}"
            return f"{_describe(old)}: {key} was {_short(old.get(key))}, is {_short(new.get(key))}"
    if len(a) != len(b):
        return f"the recorded trace has {len(a)} spans, the replay {len(b)}"
    return None
