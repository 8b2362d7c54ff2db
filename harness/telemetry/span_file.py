"""Finished spans appended to a file as OTLP JSON Lines, for processes that outlive no run.

One ``TracesData`` per export, the format of a run's ``trace.jsonl``; the run that started the
process (a fake server, the interposer) merges the file into its trace.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["SpanFileExporter"]


class SpanFileExporter(SpanExporter):
    """Writes and flushes each export, so spans survive the process being killed."""

    def __init__(self, path: str | Path) -> None:
        # Imported only when asked for: protobuf adds to a server's start-up time.
        from harness.telemetry.otlp_json import spans_to_otlp_json

        self._encode = spans_to_otlp_json
        self._out: IO[str] = Path(path).open("a", encoding="utf-8")  # noqa: SIM115

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if spans:
            self._out.write(json.dumps(self._encode(spans), separators=(",", ":")) + "\n")
            self._out.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._out.close()
