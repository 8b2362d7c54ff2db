"""Run directories: ``runs/<id>/`` with ``run.json``, ``trace.jsonl``, ``journal.jsonl`` and
``events.jsonl``. A run directory alone is enough to replay the run and to check it again."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.scenarios.model import Scenario
from harness.scenarios.runner import RunOutcome
from harness.views import write_report

__all__ = ["run_id", "write_run"]


def run_id(outcome: RunOutcome, scenario: Scenario) -> str:
    return f"{outcome.scenario}-{outcome.policy}-s{outcome.seed}-{scenario.content_hash()[:8]}"


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("heisenharness", "mcp", "anthropic", "opentelemetry-sdk"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=str, separators=(",", ":")) + "\n")


def write_run(outcome: RunOutcome, scenario: Scenario, root: Path) -> Path:
    """Write the run's artifacts under ``root`` and return the run directory."""
    run_dir = root / run_id(outcome, scenario)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = outcome.record
    meta = {
        **outcome.to_json(),
        "run_dir": str(run_dir),
        "scenario_hash": scenario.content_hash(),
        "scenario_source": outcome.source,
        "scenario_definition": scenario.model_dump(mode="json"),
        "versions": _versions(),
        "stats": outcome.stats,
        "result": record.result,
        "pending": record.pending,
        "leaked": record.leaked,
        "oracle_params": record.params,
        "replay": outcome.replay_command(),
    }
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    with (run_dir / "trace.jsonl").open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(outcome.trace, separators=(",", ":")) + "\n")
    _jsonl(run_dir / "journal.jsonl", record.journal)
    events = list(record.runtime_events)
    for server_events in record.server_events.values():
        events.extend(server_events)
    events.extend(record.fault_events)
    _jsonl(run_dir / "events.jsonl", events)
    write_report(run_dir)
    outcome.run_dir = run_dir
    return run_dir
