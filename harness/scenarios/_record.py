"""The run record of a finished runtime, the same in sim and live mode."""

from __future__ import annotations

from typing import Any

from harness._run_clock import on_run_clock
from harness.oracles import RunRecord
from harness.runtime.runtime import RunResult, Runtime
from harness.scenarios.model import Policy, Scenario
from harness.telemetry.otlp_json import flatten


def build_record(
    scenario: Scenario,
    *,
    policy: Policy,
    seed: int,
    mode: str,
    rt: Runtime | None,
    trace: dict[str, Any],
    result: RunResult | None,
    hung: bool,
    pending: list[str],
    leaked: list[str],
    origin: float | None = None,
    time_scale: float = 1.0,
) -> RunRecord:
    """Everything the oracles and the run directory need: runtime, server and fault events,
    the fake API's journal, the spans and the result (``rt`` is None when the run was stopped
    before the runtime existed). ``origin`` (live: the Unix time of the run clock's zero) puts
    the server processes' and interposers' records on the run's clock."""
    return RunRecord(
        scenario=scenario.name,
        policy=policy,
        seed=seed,
        mode=mode,
        runtime_events=[{"source": "runtime", **e.to_dict()} for e in rt.events.events]
        if rt
        else [],
        server_events={
            name: [
                on_run_clock({"source": f"mcp:{name}", **e}, origin=origin, scale=time_scale)
                for e in events
            ]
            for name, events in (rt.server_events().items() if rt else [])
        },
        fault_events=[{"source": "faults", **e} for e in rt.faults.events(origin=origin)]
        if rt
        else [],
        journal=[r.to_dict() for r in rt.fake_api.journal.records] if rt and rt.fake_api else [],
        spans=flatten(trace),
        result=_with_schedule(scenario, result.to_dict()) if result else {},
        secrets=rt.secret_values() if rt else [],
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
