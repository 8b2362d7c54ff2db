"""A ``RunRecord`` from a run directory on disk, rebuilt from the trace where a data file is
gone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.oracles.from_spans import record_from_trace
from harness.oracles.record import BLACK_BOX_EVIDENCE, EVIDENCE, RunRecord
from harness.records import read_records
from harness.run_file import read_run_file
from harness.telemetry.otlp_json import read_trace_file

__all__ = ["load_record"]


def load_record(run_dir: Path) -> RunRecord:
    """A ``RunRecord`` from a run directory (secrets are left to the caller to re-derive: until
    then ``missing`` names them). A data file that is gone leaves its evidence missing, or
    rebuilt from the trace where the spans carry it."""
    meta = read_run_file(run_dir)
    events = read_records(run_dir / "events.jsonl")
    servers: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if event["source"] == "server":
            servers.setdefault(str(event.get("server")), []).append(event)
    trace_path = run_dir / "trace.jsonl"
    record = RunRecord(
        scenario=meta.scenario,
        policy=meta.policy,
        seed=meta.seed,
        mode=meta.mode,
        time_scale=_time_scale(meta.stats),
        runtime_events=[e for e in events if e["source"] == "runtime"],
        server_events=servers,
        fault_events=[e for e in events if e["source"] == "fault"],
        journal=read_records(run_dir / "journal.jsonl"),
        spans=read_trace_file(trace_path) if trace_path.exists() else [],
        result=dict(meta.result),
        hung=meta.hung,
        pending=list(meta.pending),
        leaked=list(meta.leaked),
        params=dict(meta.oracle_params),
        missing={"secrets": "the run's secret values are not stored; re-derive them"},
    )
    runtime = meta.scenario_definition.get("runtime")
    under_test = (
        runtime.get("adapter") or runtime.get("command") if isinstance(runtime, dict) else None
    )
    if under_test:
        # A runtime under test emits none of the reference runtime's events: their absence
        # from events.jsonl is no evidence.
        shown = under_test if isinstance(under_test, str) else " ".join(map(str, under_test))
        why = f"the runtime under test ({shown}) is a black box: it emits no harness events"
        for key in BLACK_BOX_EVIDENCE:
            record.missing[key] = why
    if not trace_path.exists():
        record.missing["spans"] = f"{trace_path} is missing"
    if "result" not in meta.model_fields_set:
        record.missing["result"] = "run.json has no result"
    if not (run_dir / "events.jsonl").exists() or not (run_dir / "journal.jsonl").exists():
        _fill_from_trace(record, run_dir, trace_path)
    return record


def _fill_from_trace(record: RunRecord, run_dir: Path, trace_path: Path) -> None:
    """Evidence of a lost ``events.jsonl`` or ``journal.jsonl``, rebuilt from the trace."""
    from harness.telemetry.export import read_traces_data

    if trace_path.exists():
        rebuilt = record_from_trace(read_traces_data(trace_path))
    else:
        rebuilt = RunRecord(scenario="", policy="", seed=0, missing={k: "" for k in EVIDENCE})
    if not (run_dir / "events.jsonl").exists():
        record.runtime_events = rebuilt.runtime_events
        for key in ("reconnects", "calls", "agents", "compactions", "scoped_queries"):
            if key in rebuilt.missing:
                record.missing[key] = rebuilt.missing[key] or f"{run_dir}/events.jsonl is missing"
        record.missing.setdefault("connections", f"{run_dir}/events.jsonl is missing")
        record.missing["threads"] = f"{run_dir}/events.jsonl is missing"
        record.missing["server_events"] = f"{run_dir}/events.jsonl is missing"
    if not (run_dir / "journal.jsonl").exists():
        record.journal = rebuilt.journal
        if "api_requests" in rebuilt.missing:
            why = rebuilt.missing["api_requests"] or f"{run_dir}/journal.jsonl is missing"
            record.missing["api_requests"] = why


def _time_scale(stats: dict[str, Any]) -> float:
    scale = stats.get("time_scale", 1.0)
    ok = isinstance(scale, int | float) and not isinstance(scale, bool) and 0 < scale <= 10
    return float(scale) if ok else 1.0
