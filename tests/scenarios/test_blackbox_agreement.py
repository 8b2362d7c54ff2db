"""On the reference runtime, every founding scenario's white-box oracles (its own events) and
their black-box forms (the rig's records alone) reach the same verdict, under the buggy and the
fixed policy, in sim mode (live mode: tests/integration/test_scenario_live.py)."""

from __future__ import annotations

import pytest

from harness.oracles import check
from harness.scenarios import resolve, run_scenario
from tests.scenarios._agreement import disagreements, pairs

FOUNDING = ["cascade", "cascade_server_crash", "orphaned_tool_block", "scope_leak"]


@pytest.mark.parametrize("name", FOUNDING)
@pytest.mark.parametrize("policy", ["buggy", "fixed"])
def test_white_and_black_box_forms_agree(name: str, policy: str) -> None:
    scenario, _ = resolve(name)
    outcome = run_scenario(scenario, policy=policy)  # type: ignore[arg-type]
    judged = pairs(outcome, scenario.oracle_names)
    assert judged, "the scenario names no oracle with a black-box form"
    assert not disagreements(outcome, scenario.oracle_names), judged
    # The pairs decide: under buggy at least one fails, under fixed all hold.
    failing = [black for _, _, black, status in judged if status == "fails"]
    assert bool(failing) == (policy == "buggy"), judged


@pytest.mark.parametrize("policy", ["buggy", "fixed"])
def test_the_runtime_reconnects_after_the_server_crashed(policy: str) -> None:
    scenario, _ = resolve("cascade_server_crash")
    outcome = run_scenario(scenario, policy=policy)  # type: ignore[arg-type]
    (verdict,) = check(outcome.record, ["reconnected_after_server_death"])
    assert verdict.status == "holds", verdict.explanation
    assert "ssh" in verdict.explanation
