"""Shrinking drops the fault plan entries, tool calls and subagents a failure does not need,
and keeps the ones it does."""

from __future__ import annotations

from pathlib import Path

from harness.explore import shrink
from harness.scenarios import load_scenario, run_scenario
from harness.scenarios.model import parse_scenario


def _with_noise() -> str:
    import harness.scenarios

    builtin = Path(harness.scenarios.__file__).parent / "builtin"
    text = (builtin / "cascade_frozen_server.yaml").read_text(encoding="utf-8")
    # Two faults the cascade does not need, around the one it does (the freeze).
    noise_before = (
        "  - name: slow_listing\n    type: delay\n    target: ssh\n    seconds: {uniform: [1, 3]}\n"
        "    match: {method: tools/list}\n"
    )
    noise_after = (
        "  - {name: one_429, type: llm, agent: main, fault: {kind: rate_limit, retry_after: 1}}\n"
    )
    return text.replace("faults:\n", "faults:\n" + noise_before).replace(
        "model:\n", noise_after + "model:\n", 1
    )


def test_shrinking_keeps_only_the_fault_the_failure_needs(tmp_path: Path) -> None:
    scenario = parse_scenario(_with_noise())
    assert [f.label for f in scenario.faults] == ["slow_listing", "freeze_on_first_call", "one_429"]
    assert run_scenario(scenario, policy="buggy", seed=2).outcome == "reproduced"
    result = shrink(
        scenario,
        policy="buggy",
        seed=2,
        oracle="no_reconnect_while_in_flight",
        out_dir=tmp_path,
    )
    assert (result.faults_before, result.faults_after) == (3, 1)
    assert "faults: dropped one_429" in result.steps
    assert "faults: dropped slow_listing" in result.steps
    # The drawn delay went with its fault: no draw is left for it.
    assert not any(p.startswith("/faults/") for p in result.draws)
    assert result.path is not None
    minimal = load_scenario(result.path)
    assert [f.label for f in minimal.faults] == ["freeze_on_first_call"]
    assert run_scenario(minimal, policy="buggy", seed=2).outcome == "reproduced"


def test_shrinking_drops_a_subagent_the_failure_does_not_need(tmp_path: Path) -> None:
    from harness.scenarios import resolve

    scenario, _ = resolve("cascade_three_subagents")
    result = shrink(
        scenario, policy="buggy", seed=0, oracle="no_reconnect_while_in_flight", out_dir=tmp_path
    )
    assert result.steps == ["model: dropped main turn 0 spawn_subagent (agent C)"]
    assert result.path is not None
    minimal = load_scenario(result.path)
    assert sorted(minimal.model["agents"]) == ["A", "B", "main"]
    spawned = [c["input"]["name"] for c in minimal.model["agents"]["main"]["turns"][0]["tool_use"]]
    assert spawned == ["A", "B"]
    # A and B are both needed: A's call times out while B's is in flight.
    assert run_scenario(minimal, policy="buggy", seed=0).outcome == "reproduced"
