"""The history bug files (scenarios/bugs/history_*.yaml): each reproduces under its buggy
knobs and holds under its fix, by seed, in sim, decided by the oracle that says what the real
bug's users saw."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.scenarios import RunOutcome, parse_scenario, run_scenario
from harness.scenarios.model import load_scenario

BUGS = Path(__file__).resolve().parents[2] / "scenarios" / "bugs"
_MISSING = "`tool_use` ids were found without `tool_result` blocks immediately after"
_UNEXPECTED = "unexpected `tool_use_id` found in `tool_result` blocks"


@functools.cache
def _run(name: str, policy: str, seed: int = 0) -> RunOutcome:
    path = BUGS / f"{name}.yaml"
    return run_scenario(load_scenario(path), policy=policy, seed=seed, source=str(path))  # type: ignore[arg-type]


def _verdict(outcome: RunOutcome, oracle: str) -> tuple[str, str]:
    (verdict,) = [v for v in outcome.verdicts if v.name == oracle]
    return verdict.status, verdict.explanation


@pytest.mark.parametrize(
    ("name", "deciding", "text"),
    [
        ("history_langchain_39258", "tool_pairing_valid", _MISSING),
        ("history_semantic_kernel_12708", "tool_pairing_valid", _UNEXPECTED),
        ("history_openai_agents_4322", "tool_pairing_valid", _UNEXPECTED),
        ("history_agno_9372", "tool_pairing_valid", _UNEXPECTED),
    ],
)
@pytest.mark.parametrize("seed", [0, 7])
def test_each_bug_reproduces_under_buggy_and_holds_under_fixed(
    name: str, deciding: str, text: str, seed: int
) -> None:
    buggy = _run(name, "buggy", seed)
    assert (buggy.outcome, buggy.deciding and buggy.deciding.name) == ("reproduced", deciding)
    status, sentence = _verdict(buggy, deciding)
    assert status == "fails"
    # The follow-up invocation, 60 s in, is the request the API refused.
    assert sentence.startswith("The API rejected agent main's request at 60.0 s: "), sentence
    assert text in sentence
    fixed = _run(name, "fixed", seed)
    assert fixed.outcome == "held", [v.to_dict() for v in fixed.verdicts if not v.holds]


def test_the_tool_budget_leaves_pending_calls_only_under_the_buggy_end() -> None:
    buggy, fixed = (
        _run("history_langchain_39258", "buggy"),
        _run("history_langchain_39258", "fixed"),
    )
    (reached,) = buggy.record.runtime("tool_budget_reached")
    assert len(reached["calls"]) == 3
    # One call was left within the budget: it is the one left pending.
    assert reached["answered"] == reached["calls"][1:]
    (fixed_reached,) = fixed.record.runtime("tool_budget_reached")
    assert fixed_reached["answered"] == fixed_reached["calls"]
    status, sentence = _verdict(buggy, "persisted_history_valid")
    assert status == "fails"
    assert sentence.startswith("Thread chat as persisted (7 messages), reloaded with one more")
    assert reached["calls"][0] in sentence
    # No call of the turn that passed the budget ran, under either policy.
    for outcome in (buggy, fixed):
        assert _verdict(outcome, "tool_calls_at_most") == (
            "holds",
            "The servers received 1 tool call(s) (mem_ssh x1), at most 1.",
        )


def _with_policies(name: str, policies: dict[str, Any]) -> str:
    data = yaml.safe_load((BUGS / f"{name}.yaml").read_text(encoding="utf-8"))
    data["policies"] = policies
    return yaml.safe_dump(data)


@pytest.mark.parametrize("window", range(1, 7))
def test_the_semantic_kernel_window_sweep_holds_for_every_k_only_with_the_fix(window: int) -> None:
    knobs = {"stored_results": "text", "history_window": window}
    text = _with_policies(
        "history_semantic_kernel_12708",
        {
            "buggy": {**knobs, "compaction": "between_turns", "window_cut": "by_content"},
            "fixed": {**knobs, "window_cut": "pairs"},
        },
    )
    scenario = parse_scenario(text)
    fixed = run_scenario(scenario, policy="fixed", seed=window)
    assert fixed.outcome == "held", [v.to_dict() for v in fixed.verdicts if not v.holds]
    buggy = run_scenario(scenario, policy="buggy", seed=window)
    # Six rows are stored ([user, call, result, call, result, answer]); a window that starts
    # on a text result (or on the call before one) orphans it: k = 1..4.
    status, sentence = _verdict(buggy, "tool_pairing_valid")
    if window <= 4:
        assert status == "fails"
        assert _UNEXPECTED in sentence
    else:
        assert status == "holds", sentence
    # Stored as blocks, the same content scan finds every pair.
    blocks = parse_scenario(
        _with_policies(
            "history_semantic_kernel_12708",
            {
                "buggy": {"history_window": window, "window_cut": "by_content"},
                "fixed": {"history_window": window, "window_cut": "by_content"},
            },
        )
    )
    assert run_scenario(blocks, policy="fixed", seed=window).outcome == "held"


@pytest.mark.parametrize("seed", [0, 3])
def test_a_released_compaction_lock_loses_a_write_and_a_held_one_keeps_every_write(
    seed: int,
) -> None:
    buggy = _run("history_openai_agents_4679", "buggy", seed)
    assert (buggy.outcome, buggy.deciding and buggy.deciding.name) == (
        "reproduced",
        "thread_writes_survive",
    )
    status, sentence = _verdict(buggy, "thread_writes_survive")
    assert status == "fails"
    assert sentence == (
        "1 of 8 message(s) written to persisted threads are gone: the first, written by main "
        "to thread shared at 34.0 s, is neither in the thread nor in a summary that covers it."
    )
    # Both compactions overlapped, each without the lock while its summary was awaited.
    compacted = buggy.record.runtime("thread_compacted")
    assert [(e["agent"], e["lock"], e["time"]) for e in compacted] == [
        ("main", "released", 34.0),
        ("helper", "released", 40.0),
    ]
    fixed = _run("history_openai_agents_4679", "fixed", seed)
    assert fixed.outcome == "held", [v.to_dict() for v in fixed.verdicts if not v.holds]
    # Held, the helper's first write waited for the main agent's replacement.
    (first_helper_write, *_) = [
        e for e in fixed.record.runtime("thread_written") if e["agent"] == "helper"
    ]
    assert first_helper_write["time"] == 34.0


@pytest.mark.parametrize("seed", [0, 5])
def test_an_interrupted_thread_resumes_only_when_its_pending_calls_are_answered(
    seed: int,
) -> None:
    buggy = _run("history_claude_code_3003", "buggy", seed)
    assert buggy.outcome == "reproduced"
    status, sentence = _verdict(buggy, "tool_pairing_valid")
    assert status == "fails"
    assert sentence.startswith("The API rejected agent main's request at 30.0 s: messages.1: ")
    assert _MISSING in sentence
    # The interrupt ended the first run at 5 s and cancelled both calls on the server.
    (stop,) = [e for e in buggy.record.runtime("agent_finished") if e["stop"] == "interrupted"]
    assert stop["time"] == 5.0
    assert buggy.record.result["main"]["stop"] == "interrupted"
    assert buggy.record.result["main"]["agent_id"] == stop["agent_id"]
    cancelled = [e for e in buggy.record.server_events["ssh"] if e["kind"] == "cancelled"]
    assert len(cancelled) == 2
    fixed = _run("history_claude_code_3003", "fixed", seed)
    assert fixed.outcome == "held", [v.to_dict() for v in fixed.verdicts if not v.holds]
    resumed = fixed.record.runtime("thread_loaded")[1]
    assert len(resumed["repaired"]) == 2
    # The repair is part of the thread: the model saw two interrupted results.
    answer = fixed.record.result["tasks"]["resume"]["text"]
    assert answer.count("interrupted: this tool call never returned a result") == 2


def _orphaned_with(buggy: dict[str, Any], fixed: dict[str, Any]) -> Any:
    path = Path(__file__).resolve().parents[2] / "scenarios" / "orphaned_tool_block.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["policies"] = {"buggy": buggy, "fixed": fixed}
    return parse_scenario(yaml.safe_dump(data))


def test_compaction_while_the_calls_run_splits_a_pair_only_with_the_sliding_cut() -> None:
    mid_call = {"compaction": "between_turns", "compaction_trigger": "during_tools"}
    scenario = _orphaned_with(
        {**mid_call, "compaction_cut": "slide_to_user", "history_checks": "off"},
        {**mid_call, "compaction_cut": "keep_pairs", "history_checks": "off"},
    )
    buggy = run_scenario(scenario, policy="buggy", seed=0)
    assert buggy.outcome == "reproduced"
    status, sentence = _verdict(buggy, "tool_pairing_valid")
    assert status == "fails"
    assert _UNEXPECTED in sentence
    # Compacted while the call was in flight, with the same knobs but the cut: pairs kept.
    fixed = run_scenario(scenario, policy="fixed", seed=0)
    compacted = [e for e in fixed.record.runtime("compaction") if e["outcome"] == "compacted"]
    assert compacted
    assert all(e["open_tool_calls"] for e in compacted)
    assert _verdict(fixed, "tool_pairing_valid")[0] == "holds"


def test_strict_history_checks_refuse_compaction_while_calls_are_open() -> None:
    scenario = _orphaned_with(
        {"compaction": "eager", "history_checks": "strict"},
        {"compaction": "eager", "history_checks": "strict"},
    )
    run = run_scenario(scenario, policy="fixed", seed=0)
    refused = [e for e in run.record.runtime("compaction") if e["outcome"] == "failed"]
    assert refused
    assert all(e["reason"].startswith("compaction refused: tool calls") for e in refused)
    # What was compacted was compacted with no call open (after the final answer).
    compacted = [e for e in run.record.runtime("compaction") if e["outcome"] == "compacted"]
    assert all(not e["open_tool_calls"] for e in compacted)
    # A refusal asks for no summary: one summary request per compaction, no more.
    summaries = [r for r in run.record.journal if r.get("agent") == "compactor"]
    assert len(summaries) == len(compacted)
    assert run.outcome == "held"


def _pair_of(rows: list[dict[str, Any]], row_id: int) -> bool:
    """Whether the row ``row_id`` lies between a tool call and its result."""
    index = next(i for i, r in enumerate(rows) if r["id"] == row_id)
    before = next((r for r in reversed(rows[:index]) if not r.get("compaction")), None)
    calls = [b["id"] for b in (before or {}).get("content") or [] if b.get("type") == "tool_use"]
    after = rows[index + 1 :]
    return bool(calls) and any(
        b.get("tool_use_id") in calls for r in after[:1] for b in r.get("content") or []
    )


@pytest.mark.parametrize("seed", [1, 2, 5, 6])
def test_a_mid_call_compaction_entry_kept_by_a_later_one_orphans_a_result(seed: int) -> None:
    fixed = _run("history_pi_8667", "fixed", seed)
    assert fixed.outcome == "held", [v.to_dict() for v in fixed.verdicts if not v.holds]
    buggy = _run("history_pi_8667", "buggy", seed)
    keep = buggy.draws["/runtime/compaction/keep_last"]
    (stored,) = buggy.record.runtime("thread_stored")
    rows = stored["rows"]
    entries = [r for r in rows if r.get("compaction")]
    # Every compaction appended its entry while a call was in flight: inside a pair.
    assert entries
    assert all(_pair_of(rows, e["id"]) for e in entries)
    # The session is broken exactly when the last entry keeps from an earlier entry.
    kept_from_entry = entries[-1]["first_kept"] in {e["id"] for e in entries}
    status, sentence = _verdict(buggy, "persisted_history_valid")
    assert (status == "fails") is kept_from_entry, (keep, sentence)
    assert buggy.outcome == ("reproduced" if kept_from_entry else "held")
    if kept_from_entry:
        assert _UNEXPECTED in sentence
        assert _verdict(buggy, "tool_pairing_valid")[0] == "fails"


@pytest.mark.parametrize(("errors", "stop"), [("fail_run", "error"), ("keep_history", "end_turn")])
def test_a_failed_summary_between_turns_ends_the_run_only_under_fail_run(
    errors: str, stop: str
) -> None:
    path = Path(__file__).resolve().parents[2] / "scenarios" / "orphaned_tool_block.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["policies"] = {"fixed": {"compaction_errors": errors}}
    data["faults"] = [
        {"type": "llm", "agent": "compactor", "count": 10, "fault": {"kind": "overloaded"}}
    ]
    run = run_scenario(parse_scenario(yaml.safe_dump(data)), policy="fixed", seed=0)
    (main,) = [e for e in run.record.runtime("agent_finished") if e["agent"] == "main"]
    assert main["stop"] == stop
    if stop == "error":
        assert main["error_type"] == "compaction_failed"
        assert "529" in main["error"]
    else:
        failed = [e for e in run.record.runtime("compaction") if e["outcome"] == "failed"]
        assert failed
        assert all(e["reason"].startswith("summary request failed") for e in failed)


@pytest.mark.parametrize("seed", [0, 3])
def test_an_approval_resume_that_writes_the_results_alone_orphans_them(seed: int) -> None:
    name = "history_openai_agents_4827"
    buggy, fixed = _run(name, "buggy", seed), _run(name, "fixed", seed)
    assert (buggy.outcome, fixed.outcome) == ("reproduced", "held")
    for outcome, writes in ((buggy, "results"), (fixed, "turn")):
        (requested,) = outcome.record.runtime("approval_requested")
        (resumed,) = outcome.record.runtime("approval_resumed")
        assert requested["tools"] == ["refund"]
        assert resumed["calls"] == requested["calls"]
        assert resumed["writes"] == writes
        # The call ran only once the user had answered, 120 s after the run parked.
        (started,) = outcome.record.runtime("call_started")
        assert started["time"] - requested["time"] == pytest.approx(120.0)
    # The parked run itself completes under both (its history is whole in memory); both later
    # runs on the session are refused under buggy: the orphan is durable.
    finished = [e["stop"] for e in buggy.record.runtime("agent_finished")]
    assert finished == ["end_turn", "error", "error"]
    status, sentence = _verdict(buggy, "tool_pairing_valid")
    assert status == "fails"
    assert sentence.startswith("The API rejected agent main's request at 600.0 s: "), sentence
    assert _UNEXPECTED in sentence
    assert requested["calls"][0] in sentence
    assert _verdict(buggy, "persisted_history_valid")[0] == "fails"


def test_a_rejected_approval_answers_the_parked_call_without_running_it() -> None:
    data = yaml.safe_load((BUGS / "history_openai_agents_4827.yaml").read_text(encoding="utf-8"))
    data["runtime"]["approvals"]["decision"] = "reject"
    outcome = run_scenario(parse_scenario(yaml.safe_dump(data)), policy="fixed")
    assert outcome.outcome == "held"
    assert outcome.record.runtime("call_started") == []
    (resumed,) = outcome.record.runtime("approval_resumed")
    assert resumed["decision"] == "reject"
    (answered,) = outcome.record.journal[1]["request"]["messages"][-1]["blocks"]
    assert (answered["tool_use_id"], answered["is_error"]) == (resumed["calls"][0], True)
