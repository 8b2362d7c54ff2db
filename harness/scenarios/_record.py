"""The run record of a finished runtime, the same in sim and live mode."""

from __future__ import annotations

from typing import Any

from harness.oracles import RunRecord
from harness.runtime.runtime import RunResult
from harness.scenarios.model import Policy, Scenario
from harness.scenarios.rig import Rig
from harness.telemetry.otlp_json import flatten


def build_record(
    scenario: Scenario,
    *,
    policy: Policy,
    seed: int,
    mode: str,
    rig: Rig | None,
    trace: dict[str, Any],
    result: RunResult | None,
    hung: bool,
    pending: list[str],
    leaked: list[str],
) -> RunRecord:
    """Everything the oracles and the run directory need: runtime, server and fault events,
    the fake API's journal, the spans and the result (``rig`` is None when the run was stopped
    before the reference runtime existed)."""
    rt = rig.runtime if rig else None
    return RunRecord(
        scenario=scenario.name,
        policy=policy,
        seed=seed,
        mode=mode,
        runtime_events=[e.to_json() for e in rt.events.events] if rt else [],
        server_events=rig.server_events() if rig else {},
        fault_events=rig.fault_events() if rig else [],
        journal=rig.journal() if rig else [],
        spans=flatten(trace),
        result=_with_schedule(scenario, result.to_dict()) if result else {},
        secrets=rig.secrets() if rig else [],
        hung=hung,
        pending=pending,
        leaked=leaked,
        params=scenario.oracle_params,
    )


def _with_schedule(scenario: Scenario, result: dict[str, Any]) -> dict[str, Any]:
    """Each scheduled task's answer with what the scenario planned for it (when it started,
    its context and declared scope), as the rig records them for a runtime under test: the
    black-box scope oracle reads them."""
    for task in scenario.runtime.scheduled:
        answer = (result.get("tasks") or {}).get(task.name)
        if isinstance(answer, dict):
            answer.setdefault("started", task.at)
            answer.setdefault("context_id", task.context_id)
            answer.setdefault("declared_scope", task.scope)
    return result
