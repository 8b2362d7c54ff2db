"""``RunRecord``: everything a run left behind, in the form oracles read.

The same record comes from a run that just finished and from a run directory on disk
(``run.json``, ``events.jsonl``, ``journal.jsonl``, ``trace.jsonl``; see
``harness.oracles.load``), so ``harness check`` on a saved run reaches the same verdicts as the
run itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.run_file import read_run_file
from harness.telemetry.otlp_json import FlatSpan

__all__ = ["BLACK_BOX_EVIDENCE", "EVIDENCE", "RunRecord", "read_run_json"]

# What a record may hold, by the name oracles declare in ``needs``.
EVIDENCE: dict[str, str] = {
    "reconnects": "the runtime's reconnect decisions",
    "calls": "every tool call's start and end",
    "agents": "every agent's start and stop",
    "api_requests": "the API's request journal",
    "compactions": "the runtime's compaction decisions",
    "scoped_queries": "the scope of every chat query",
    "result": "the agents' final answers",
    "connections": "the connections and processes left at the end",
    "secrets": "the secret values the run handed out",
    "spans": "the trace",
    "server_events": "the fake MCP servers' own records (requests, cancellations, connections)",
    "threads": "the runtime's persisted threads (every write, compaction and the end state)",
}


# What only the reference runtime's own events hold (a runtime under test emits none).
BLACK_BOX_EVIDENCE = (
    "reconnects",
    "calls",
    "agents",
    "compactions",
    "scoped_queries",
    "threads",
)


@dataclass(slots=True)
class RunRecord:
    """A run's record. Events and journal rows are run records (``harness.records``): JSON
    objects with ``source`` (``runtime``, ``server``, ``fault``, ``api``), ``kind`` and
    ``time`` on the run's clock; ``server_events`` groups the servers' by their ``server``."""

    scenario: str
    policy: str
    seed: int
    mode: str = "sim"
    # Live mode: real seconds per scenario second (timers are late by real milliseconds).
    time_scale: float = 1.0
    runtime_events: list[dict[str, Any]] = field(default_factory=list)
    server_events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fault_events: list[dict[str, Any]] = field(default_factory=list)
    journal: list[dict[str, Any]] = field(default_factory=list)
    spans: list[FlatSpan] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    # Values that must never appear in telemetry (the vault's). Kept in memory only: on disk a
    # run re-derives them from its scenario and seed.
    secrets: list[str] = field(default_factory=list, repr=False)
    hung: bool = False
    pending: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    # Evidence (keys of EVIDENCE) this record lacks, each with why; empty for a finished run.
    missing: dict[str, str] = field(default_factory=dict)

    def runtime(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.runtime_events if kind is None or e.get("kind") == kind]


def read_run_json(path: Path) -> dict[str, Any]:
    """A run directory's ``run.json`` as plain data, validated by the model that writes it
    (``harness.run_file``); anything else is a ``ConfigError`` naming the file and field."""
    return read_run_file(path.parent).meta()
