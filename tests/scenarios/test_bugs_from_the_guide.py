"""Bug files written from the README and the authoring guide alone (no Python): each
reproduces under its buggy knobs and holds under its fixed ones, by seed and strategy, decided
by the oracle that matches what its users saw."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenarios import load_scenario, run_scenario

BUGS = Path(__file__).resolve().parents[2] / "scenarios" / "bugs"


def _verdicts(outcome: object) -> dict[str, tuple[str, str]]:
    return {v.name: (v.status, v.explanation) for v in outcome.verdicts}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("seed", "strategy"), [(0, "fifo"), (3, "random"), (5, "pct")])
def test_openclaw_9717_one_hung_parallel_call_holds_back_its_siblings(
    seed: int, strategy: str
) -> None:
    scenario = load_scenario(BUGS / "mcp_openclaw_9717.yaml")
    buggy = run_scenario(scenario, policy="buggy", seed=seed, strategy=strategy)
    fixed = run_scenario(scenario, policy="fixed", seed=seed, strategy=strategy)
    assert (buggy.outcome, fixed.outcome) == ("reproduced", "held")
    assert buggy.record.hung
    status, sentence = _verdicts(buggy)["tool_results_within"]
    # The three calls that finished on the server never reached the model either.
    assert status == "fails"
    assert "(4 of 4 call(s) late or unanswered)" in sentence
    finished = [e["outcome"] for e in buggy.record.runtime("call_ended")]
    assert finished.count("ok") == 3
    ended = sorted(e["outcome"] for e in fixed.record.runtime("call_ended"))
    assert ended == ["ok", "ok", "ok", "timeout"]
    answer = fixed.record.result["main"]["text"]
    assert answer.count("40% used") == 3


@pytest.mark.parametrize(("seed", "strategy"), [(0, "fifo"), (2, "random")])
def test_litellm_4931_a_trimmed_thread_keeps_results_without_their_call(
    seed: int, strategy: str
) -> None:
    scenario = load_scenario(BUGS / "history_litellm_4931.yaml")
    buggy = run_scenario(scenario, policy="buggy", seed=seed, strategy=strategy)
    fixed = run_scenario(scenario, policy="fixed", seed=seed, strategy=strategy)
    assert (buggy.outcome, fixed.outcome) == ("reproduced", "held")
    status, sentence = _verdicts(buggy)["api_requests_valid"]
    assert status == "fails"
    assert "unexpected `tool_use_id` found in `tool_result` blocks" in sentence
    assert fixed.record.result["tasks"]["follow_up"]["text"].startswith("Bergen is warmer")
