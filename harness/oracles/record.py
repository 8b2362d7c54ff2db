"""``RunRecord``: everything a run left behind, in the form oracles read.

The same record comes from a run that just finished and from a run directory on disk
(``run.json``, ``events.jsonl``, ``journal.jsonl``, ``trace.jsonl``), so ``harness check`` on a
saved run reaches the same verdicts as the run itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._files import ARTEFACT_LIMIT, parse_json, read_text
from harness.errors import ConfigError
from harness.run_file import read_run_file
from harness.telemetry.otlp_json import TOO_BIG_HINT, FlatSpan, read_trace_file

__all__ = ["RunRecord", "read_jsonl"]


@dataclass(slots=True)
class RunRecord:
    """A run's record. Events are dicts with ``source``: ``runtime``, ``mcp:<server>`` or
    ``faults`` (every fault decision of the run's fault plan)."""

    scenario: str
    policy: str
    seed: int
    mode: str = "sim"
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

    def runtime(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.runtime_events if kind is None or e.get("kind") == kind]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Objects of a JSON Lines file; a missing file is empty; a file that is not a regular
    UTF-8 file within ``ARTEFACT_LIMIT`` or holds a bad line is a ``ConfigError``."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    text = read_text(path, what=path.name, limit=ARTEFACT_LIMIT, hint=TOO_BIG_HINT)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = parse_json(line, path=path, line=number)
        if not isinstance(row, dict):
            raise ConfigError("each line must be a JSON object", path=path, line=number)
        rows.append(row)
    return rows


def load_record(run_dir: Path) -> RunRecord:
    """A ``RunRecord`` from a run directory (secrets are left to the caller to re-derive)."""
    meta = read_run_file(run_dir)
    events = read_jsonl(run_dir / "events.jsonl")
    servers: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        source = str(event.get("source", "runtime"))
        if source.startswith("mcp:"):
            servers.setdefault(source[4:], []).append(event)
    trace_path = run_dir / "trace.jsonl"
    return RunRecord(
        scenario=meta.scenario,
        policy=meta.policy,
        seed=meta.seed,
        mode=meta.mode,
        runtime_events=[e for e in events if e.get("source", "runtime") == "runtime"],
        server_events=servers,
        fault_events=[e for e in events if e.get("source") == "faults"],
        journal=read_jsonl(run_dir / "journal.jsonl"),
        spans=read_trace_file(trace_path) if trace_path.exists() else [],
        result=dict(meta.result),
        hung=meta.hung,
        pending=list(meta.pending),
        leaked=list(meta.leaked),
        params=dict(meta.oracle_params),
    )
