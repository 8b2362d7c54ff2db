"""``SpanQuery``: find spans by name and attributes, walk parents and children, check order."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from harness.telemetry.otlp_json import FlatSpan

__all__ = ["SpanQuery", "SpanRecorder"]


def _matches(span: FlatSpan, name: str | None, attrs: dict[str, Any]) -> bool:
    if name is not None and not fnmatch.fnmatchcase(span["name"], name):
        return False
    attributes = span["attributes"]
    return all(key in attributes and attributes[key] == value for key, value in attrs.items())


def _describe(spans: list[FlatSpan]) -> str:
    return ", ".join(repr(s["name"]) for s in spans) or "no spans"


class SpanQuery:
    """Spans in the flat form of ``harness.telemetry.otlp_json`` (dicts with ``name``,
    ``span_id``, ``parent_id``, ``attributes``, ``start_ns``, ``service`` ...), ordered by
    start time. Names accept shell patterns (``"tools/call *"``); attributes with dots are
    passed as ``**{"gen_ai.tool.name": "mem_ssh"}``."""

    def __init__(self, source: Callable[[], list[FlatSpan]]) -> None:
        self._source = source

    @property
    def spans(self) -> list[FlatSpan]:
        """Every span, ordered by start time then span id."""
        return self._source()

    def __iter__(self) -> Iterator[FlatSpan]:
        return iter(self.spans)

    def __len__(self) -> int:
        return len(self.spans)

    def names(self) -> list[str]:
        return [s["name"] for s in self.spans]

    def find(self, name: str | None = None, /, **attrs: Any) -> list[FlatSpan]:
        """Spans whose name matches ``name`` and whose attributes include ``attrs``."""
        return [s for s in self.spans if _matches(s, name, attrs)]

    def one(self, name: str | None = None, /, **attrs: Any) -> FlatSpan:
        """The only span that matches; an ``AssertionError`` lists what there is otherwise."""
        found = self.find(name, **attrs)
        if len(found) != 1:
            raise AssertionError(
                f"expected one span matching {name!r} {attrs or ''}, found {len(found)}; "
                f"spans: {_describe(self.spans)}"
            )
        return found[0]

    def parent(self, span: FlatSpan) -> FlatSpan | None:
        return next((s for s in self.spans if s["span_id"] == span["parent_id"]), None)

    def children(self, span: FlatSpan, name: str | None = None, /, **attrs: Any) -> list[FlatSpan]:
        """Direct children of ``span`` (optionally only those matching ``name`` / ``attrs``)."""
        return [
            s for s in self.spans if s["parent_id"] == span["span_id"] and _matches(s, name, attrs)
        ]

    def assert_order(self, *names: str) -> list[FlatSpan]:
        """Assert that a span matching each name exists and that they started in this order
        (the first match of each, after the previous one's start); returns those spans."""
        spans = self.spans
        chosen: list[FlatSpan] = []
        start = -1
        for name in names:
            later = [s for s in spans if _matches(s, name, {}) and s["start_ns"] >= start]
            later = [s for s in later if s not in chosen]
            if not later:
                where = f" after {chosen[-1]['name']!r}" if chosen else ""
                seen = [s["name"] for s in spans if any(_matches(s, n, {}) for n in names)]
                raise AssertionError(f"no span {name!r}{where}; in start order: {seen}")
            chosen.append(later[0])
            start = later[0]["start_ns"]
        return chosen


class SpanRecorder(SpanQuery):
    """A ``SpanQuery`` over the spans an in-memory exporter has received so far."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        super().__init__(self._finished)
        self.exporter = exporter

    def _finished(self) -> list[FlatSpan]:
        from harness.telemetry.otlp_json import flatten, spans_to_otlp_json

        spans = self.exporter.get_finished_spans()
        return flatten(spans_to_otlp_json(spans)) if spans else []

    def clear(self) -> None:
        self.exporter.clear()
