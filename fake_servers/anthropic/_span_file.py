"""Finished spans appended to a file as OTLP JSON Lines (one ``TracesData`` per export)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from harness.telemetry.otlp_json import spans_to_otlp_json

__all__ = ["SpanFileExporter"]


class SpanFileExporter(SpanExporter):
    """Writes and flushes each export so spans survive the process being stopped."""

    def __init__(self, path: str | Path) -> None:
        self._out: IO[str] = Path(path).open("a", encoding="utf-8")  # noqa: SIM115

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if spans:
            self._out.write(json.dumps(spans_to_otlp_json(spans), separators=(",", ":")) + "\n")
            self._out.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._out.close()
