"""The public scope bugs written as scenario files (scenarios/bugs/scope_*.yaml), in sim mode:
each reproduces under its buggy knobs and holds under its fix, by seed, decided by the oracle
that says what the bug's users saw; flipping the one knob of the bug flips the outcome."""

from __future__ import annotations

import pytest

from harness.scenarios import resolve, run_scenario
from harness.scenarios.model import Scenario
from harness.scenarios.registry import BUILTIN_DIR

BUGS = BUILTIN_DIR / "bugs"

# file -> (the deciding oracle, what its sentence says under the buggy knobs, the bug's knob)
EXPECTED = {
    "scope_mastra_15426": (
        "canary_confined",
        "agent alice's request carried the canary 'OL-7731' in a chat_search result",
        "default_query_scope",
    ),
    "scope_junior_652": (
        "fact_found",
        "Agent oncall asked but saw too little",
        "default_query_scope",
    ),
    "scope_anythingllm_1349": (
        "canary_confined",
        "agent new_thread's request carried the canary 'Lisbon' in a chat_list_messages result",
        "default_query_scope",
    ),
    "scope_mastra_13927": (
        "own_tool_calls_only",
        "agent writer's request carried tool call",
        "subagent_context",
    ),
    "scope_claudecode_14118": (
        "own_tool_calls_only",
        "agent lead's request carried tool call",
        "background_subagents",
    ),
    "scope_kiro_10482": (
        "history_prefix_kept",
        "agent lead's request kept only 0 of the 3 messages",
        "subagent_context",
    ),
}


def _load(name: str) -> Scenario:
    scenario, _ = resolve(str(BUGS / f"{name}.yaml"))
    return scenario


def test_every_scope_bug_file_is_covered() -> None:
    assert {p.stem for p in BUGS.glob("scope_*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_bug_reproduces_under_buggy_and_holds_under_fixed(name: str, seed: int) -> None:
    oracle, sentence, _ = EXPECTED[name]
    scenario = _load(name)
    buggy = run_scenario(scenario, policy="buggy", seed=seed, strategy="random")
    assert buggy.outcome == "reproduced", [v.to_dict() for v in buggy.verdicts]
    assert buggy.deciding is not None
    assert buggy.deciding.name == oracle
    assert sentence in buggy.deciding.explanation
    fixed = run_scenario(scenario, policy="fixed", seed=seed, strategy="random")
    assert fixed.outcome == "held", [v.to_dict() for v in fixed.verdicts]
    assert all(v.judged and v.holds for v in fixed.verdicts)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_bugs_knob_alone_decides(name: str) -> None:
    """The buggy preset with only the bug's knob set to its fixed value holds: the file's
    buggy and fixed differ in the real bug's dimension, not in a bundle."""
    oracle, _, knob = EXPECTED[name]
    scenario = _load(name)
    fixed_value = getattr(scenario.policies["fixed"], knob)
    # Same file; the buggy policy keeps everything but the bug's knob.
    buggy = scenario.policies["buggy"].model_dump(exclude_none=True)
    buggy[knob] = fixed_value
    data = scenario.model_dump(mode="json", exclude_none=True)
    data["policies"]["buggy"] = buggy
    patched = Scenario.model_validate(data)
    outcome = run_scenario(patched, policy="buggy")
    verdict = next(v for v in outcome.verdicts if v.name == oracle)
    assert verdict.status == "holds", verdict.to_dict()


def test_same_seed_same_sentences() -> None:
    scenario = _load("scope_mastra_15426")
    first = run_scenario(scenario, policy="buggy", seed=3, strategy="random")
    again = run_scenario(scenario, policy="buggy", seed=3, strategy="random")
    assert [v.to_dict() for v in first.verdicts] == [v.to_dict() for v in again.verdicts]


def test_a_background_subagent_runs_beside_its_parent_which_waits_for_it() -> None:
    outcome = run_scenario(_load("scope_claudecode_14118"), policy="fixed")
    main = outcome.record.result["main"]
    assert [(c["name"], c["stop"]) for c in main["children"]] == [("surveyor", "end_turn")]
    events = outcome.record.runtime_events
    survey_end = next(
        e["time"] for e in events if e["kind"] == "agent_finished" and e["agent"] == "surveyor"
    )
    lead_requests = [r["time"] for r in outcome.record.journal if r["agent"] == "lead"]
    # The spawn returned at once: the lead asked again while the survey (10 s) ran...
    assert lead_requests[1] < survey_end < lead_requests[2]
    # ...and the lead's run ended only after its background subagent's.
    order = [(e["kind"], e["agent"]) for e in events if e["kind"].startswith("agent_")]
    assert order.index(("agent_finished", "surveyor")) < order.index(("agent_finished", "lead"))
