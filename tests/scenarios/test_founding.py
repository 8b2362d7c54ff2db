"""Every built-in scenario, seeded, in sim mode: the bug reproduces under the buggy policy and
the fix holds under the fixed one; the same seed gives the same outcome and the same trace."""

from __future__ import annotations

import pytest

from harness.scenarios import builtin_names, resolve, run_scenario
from harness.telemetry.otlp_json import flatten

FOUNDING = ["cascade", "orphaned_tool_block", "scope_leak"]


@pytest.mark.parametrize("name", builtin_names())
@pytest.mark.parametrize("policy", ["buggy", "fixed"])
def test_builtin_scenario_meets_its_expectation(name: str, policy: str) -> None:
    scenario, _ = resolve(name)
    outcome = run_scenario(scenario, policy=policy)  # type: ignore[arg-type]
    assert outcome.outcome == ("reproduced" if policy == "buggy" else "held"), [
        v.to_dict() for v in outcome.verdicts
    ]
    assert not outcome.record.hung
    assert outcome.deciding is not None
    assert outcome.deciding.explanation


def test_founding_scenarios_are_in_the_builtin_set() -> None:
    assert set(FOUNDING) <= set(builtin_names())
    assert len(builtin_names()) >= 9  # each founding bug with at least two variants


@pytest.mark.parametrize("name", FOUNDING)
def test_same_seed_same_outcome_and_trace_over_20_seeds(name: str) -> None:
    scenario, _ = resolve(name)
    seen_hashes = set()
    for seed in range(20):
        for policy in ("buggy", "fixed"):
            first = run_scenario(scenario, policy=policy, seed=seed, strategy="random")  # type: ignore[arg-type]
            again = run_scenario(scenario, policy=policy, seed=seed, strategy="random")  # type: ignore[arg-type]
            assert first.outcome == again.outcome
            assert first.met, (seed, policy, [v.to_dict() for v in first.verdicts if not v.holds])
            assert flatten(first.trace) == flatten(again.trace), (seed, policy)
            assert first.stats["step_hash"] == again.stats["step_hash"]
            seen_hashes.add(first.stats["step_hash"])
    # The seeds really explored different schedules.
    assert len(seen_hashes) > 2


def test_trace_timestamps_are_virtual_and_start_at_the_scenario_start() -> None:
    scenario, _ = resolve("cascade")
    outcome = run_scenario(scenario, policy="buggy")
    spans = outcome.record.spans
    start_ns = int(scenario.start.timestamp() * 1e9)
    assert min(s["start_ns"] for s in spans) == start_ns
    reconnects = [s for s in spans if s["name"] == "harness.mcp.reconnect"]
    assert reconnects
    assert reconnects[0]["start_ns"] - start_ns == 150 * 10**9
    assert len({s["trace_id"] for s in spans}) == 1


def test_buggy_cascade_trace_names_the_decision() -> None:
    scenario, _ = resolve("cascade")
    spans = run_scenario(scenario, policy="buggy").record.spans
    decisions = [s["attributes"] for s in spans if s["name"] == "harness.mcp.reconnect"]
    # Both start at the same virtual instant; their order in the file follows span ids.
    assert [d["harness.reconnect.decision"] for d in decisions] == ["performed", "performed"]
    assert sorted(d["harness.mcp.in_flight"] for d in decisions) == [0, 1]
    fixed = run_scenario(scenario, policy="fixed").record.spans
    fixed_decisions = [
        s["attributes"]["harness.reconnect.decision"]
        for s in fixed
        if s["name"] == "harness.mcp.reconnect"
    ]
    assert fixed_decisions == ["deferred", "performed"]
