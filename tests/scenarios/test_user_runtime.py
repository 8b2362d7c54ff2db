"""A runtime under test that is not the harness's own, in sim mode: the minimal example agent
through its adapter reproduces the cascade by seed, black-box oracles judge it (and agree with
the white-box ones on the reference runtime), and a broken runtime is named, never passed."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import RuntimeFailure, ScenarioError
from harness.oracles import check, load_record
from harness.scenarios import parse_scenario, resolve, run_scenario, write_run
from harness.scenarios.model import load_scenario
from harness.telemetry.compare import first_difference
from harness.telemetry.otlp_json import flatten

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "examples" / "minimal_agent" / "cascade.yaml"

CHAT = """
name: chat_reader
description: A scheduled review in the Blog tab that declared scope all lists the chat.
runtime:
  adapter: tests.scenarios._runtimes:chat_reader
  agents: {reviewer: {context_id: Blog}}
  main_agent: reviewer
  scheduled:
    - {name: review, at: 60, agent: reviewer, context_id: Blog, scope: all, prompt: Review.}
policies:
  fixed: {options: {declared_scope: true}}
servers:
  chat: {fake: chat}
model:
  agents: {reviewer: {turns: [{text: unused}]}}
oracles: [scheduled_queries_scoped, tasks_answered, no_reconnect_while_in_flight]
expect: {buggy: [scheduled_queries_scoped]}
"""


def test_minimal_agent_cascade_reproduces_by_seed() -> None:
    scenario = load_scenario(MINIMAL)
    first = run_scenario(scenario, policy="buggy", seed=7)
    again = run_scenario(scenario, policy="buggy", seed=7)
    verdicts = {v.name: v.status for v in first.verdicts}
    assert first.outcome == again.outcome == "reproduced", verdicts
    assert verdicts == {
        "sibling_results_kept": "fails",
        "no_teardown_under_calls": "holds",
        "api_requests_valid": "holds",
        "tasks_answered": "holds",
    }
    assert "finished 1 of them" in first.deciding.explanation  # type: ignore[union-attr]
    assert first_difference(flatten(first.trace), flatten(again.trace)) is None
    assert first.stats["step_hash"] == again.stats["step_hash"]
    answer = first.record.result["main"]["text"]
    assert answer.startswith("A tool failed"), answer
    fixed = run_scenario(scenario, policy="fixed", seed=7)
    assert fixed.outcome == "held", [v.to_dict() for v in fixed.verdicts]
    assert "b: up 12 days" in fixed.record.result["main"]["text"]


@pytest.mark.parametrize("policy", ["buggy", "fixed"])
def test_black_box_oracles_agree_with_the_reference_runtime(policy: str) -> None:
    scenario, _ = resolve("cascade")
    outcome = run_scenario(scenario, policy=policy)  # type: ignore[arg-type]
    white, black, valid = check(
        outcome.record,
        ["no_reconnect_while_in_flight", "no_teardown_under_calls", "api_requests_valid"],
    )
    assert white.judged
    assert black.judged
    assert valid.holds
    assert white.holds == black.holds == (policy == "fixed"), (white, black)
    if policy == "buggy":
        cut = black.evidence[0]["cut_off"]
        assert [c["arguments"]["host"] for c in cut] == ["db1"], black.evidence


def test_scope_leak_judged_from_the_chat_servers_records() -> None:
    scenario = parse_scenario(CHAT)
    buggy = run_scenario(scenario, policy="buggy")
    assert buggy.outcome == "reproduced", [v.to_dict() for v in buggy.verdicts]
    explanation = buggy.deciding.explanation  # type: ignore[union-attr]
    assert "scheduled task review (declared scope all)" in explanation
    assert "without a context_id: the server fell back to its default tab" in explanation
    fixed = run_scenario(scenario, policy="fixed")
    scoped, answered, white = fixed.verdicts
    assert scoped.holds
    assert answered.holds
    # The reference runtime's own events do not exist here: that oracle cannot judge.
    assert white.status == "cannot judge"
    assert "black box" in white.explanation
    assert fixed.outcome == "inconclusive"


def _with_adapter(spec: str) -> str:
    return CHAT.replace("tests.scenarios._runtimes:chat_reader", spec)


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("tests.scenarios._nowhere:create", "could not import tests.scenarios._nowhere"),
        ("tests.scenarios._runtimes:missing", "has no attribute missing"),
    ],
)
def test_an_adapter_that_does_not_load_is_an_error(spec: str, said: str, tmp_path: Path) -> None:
    path = tmp_path / "adapter.yaml"
    path.write_text(_with_adapter(spec), encoding="utf-8")
    outcome = run_scenario(load_scenario(path), policy="buggy", source=str(path))
    assert outcome.outcome == "error"
    assert not outcome.met
    assert outcome.error is not None
    assert outcome.error.startswith(f"{path}: runtime.adapter {spec}: ")
    assert said in outcome.error
    assert outcome.to_json()["error"] == outcome.error


def test_a_factory_that_raises_is_an_error_named_where_it_raised() -> None:
    scenario = parse_scenario(_with_adapter("tests.scenarios._runtimes:refusing"))
    outcome = run_scenario(scenario, policy="buggy")
    assert outcome.outcome == "error"
    assert "the factory raised ValueError: no API key configured" in (outcome.error or "")
    assert "_runtimes.py:" in (outcome.error or "")


def test_a_runtime_that_raises_is_an_error_recorded_where_it_raised() -> None:
    scenario = parse_scenario(_with_adapter("tests.scenarios._runtimes:crashing"))
    for policy in ("buggy", "fixed"):
        outcome = run_scenario(scenario, policy=policy)  # type: ignore[arg-type]
        # Never "reproduced" (buggy) nor "held" (fixed): the runtime did not do the work.
        assert outcome.outcome == "error"
        assert (outcome.error or "").startswith(
            "task review: RuntimeError: cannot handle review (raised at "
        )
        assert "_runtimes.py:" in (outcome.error or "")
        answered = next(v for v in outcome.verdicts if v.name == "tasks_answered")
        assert answered.fails
        assert "cannot handle review" in answered.explanation


def test_a_runtime_that_leaves_the_virtual_time_loop_is_named() -> None:
    scenario = parse_scenario(_with_adapter("tests.scenarios._runtimes:threaded"))
    with pytest.raises(RuntimeFailure, match="left the virtual-time loop") as caught:
        run_scenario(scenario, policy="fixed")
    assert "a thread (AnyIO worker thread)" in caught.value.args[0]
    assert "_runtimes.py:" in caught.value.args[0]
    assert "--mode live" in caught.value.args[0]


def test_a_command_runtime_in_sim_is_a_scenario_error() -> None:
    text = CHAT.replace(
        "adapter: tests.scenarios._runtimes:chat_reader", "command: [python, agent.py]"
    ).replace("  fixed: {options: {declared_scope: true}}", "  fixed: {env: {X: '1'}}")
    with pytest.raises(ScenarioError, match="--mode live"):
        run_scenario(parse_scenario(text), policy="buggy")


def test_reference_runtime_knobs_are_refused_for_a_runtime_under_test() -> None:
    text = CHAT.replace("{options: {declared_scope: true}}", "{scope: explicit}")
    with pytest.raises(ScenarioError, match="knob of the reference runtime"):
        parse_scenario(text)


def test_a_saved_black_box_run_keeps_what_it_cannot_judge(tmp_path: Path) -> None:
    scenario = load_scenario(MINIMAL)
    run_dir = write_run(run_scenario(scenario, policy="fixed"), scenario, tmp_path)
    white, black = check(load_record(run_dir), ["agents_completed", "sibling_results_kept"])
    # No agent events in events.jsonl is no evidence that every agent completed.
    assert white.status == "cannot judge"
    assert "black box" in white.explanation
    assert black.holds


def test_an_error_is_kept_in_the_run_directory_and_shown(tmp_path: Path) -> None:
    from harness.run_file import read_run_file
    from harness.views import write_report

    scenario = parse_scenario(_with_adapter("tests.scenarios._runtimes:crashing"))
    outcome = run_scenario(scenario, policy="buggy")
    run_dir = write_run(outcome, scenario, tmp_path / "run")
    saved = read_run_file(run_dir)
    assert (saved.outcome, saved.met) == ("error", False)
    assert saved.error == outcome.error
    html = write_report(run_dir).read_text(encoding="utf-8")
    assert "id='error'>error: task review: RuntimeError: cannot handle review" in html


def test_explore_counts_an_error_neither_as_a_hit_nor_as_a_pass() -> None:
    from harness.explore import explore

    scenario = parse_scenario(_with_adapter("tests.scenarios._runtimes:crashing"))
    report = explore(scenario, source="crashing", runs=2, policy="buggy")
    assert (report.runs, report.errors, report.failures, report.judged) == (2, 2, 0, 0)
    assert report.hit_rate == 0.0
    assert report.ci95 == (0.0, 1.0)  # nothing judged: nothing known
    assert (report.first_error or "").startswith("seed 0: task review: RuntimeError")
    assert report.to_json()["errors"] == 2
