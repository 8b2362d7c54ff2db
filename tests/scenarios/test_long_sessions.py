"""The long-session scenarios (thinking blocks in a tool loop, the context window): what their
oracles see in a buggy and a fixed run, replay and determinism by seed, and the runtime knobs
behind them."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.oracles import RunRecord, check, load_record
from harness.oracles.from_spans import record_from_trace
from harness.scenarios import RunOutcome, parse_scenario, resolve, run_scenario, write_run
from harness.telemetry.otlp_json import flatten
from tests.reliability._cli import invoke

LONG_SESSIONS = [
    "thinking_block_dropped",
    "thinking_block_dropped_subagent",
    "context_overflow",
    "context_overflow_random",
]
_THINKING_FIRST = "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`"


@functools.cache
def _run(name: str, policy: str) -> RunOutcome:
    scenario, source = resolve(name)
    return run_scenario(scenario, policy=policy, source=source)  # type: ignore[arg-type]


def _verdict(outcome: RunOutcome, oracle: str) -> tuple[str, str]:
    (verdict,) = [v for v in outcome.verdicts if v.name == oracle]
    return verdict.status, verdict.explanation


def test_a_buggy_run_names_the_turn_that_lost_its_thinking_block() -> None:
    buggy = _run("thinking_block_dropped", "buggy")
    status, sentence = _verdict(buggy, "thinking_blocks_preserved")
    assert status == "fails"
    first_response = buggy.record.journal[0]["response"]
    assert first_response["block_types"] == ["thinking", "tool_use"]
    assert sentence.startswith(
        f"At 2.0 s agent main's request sent back the tool-loop turn {first_response['id']} "
        "with 0 of the 1 thinking block(s) its response began with; the API answered 400: "
        + _THINKING_FIRST
    )
    dropped = buggy.record.runtime("thinking_dropped")
    assert [(e["agent"], e["response_id"], e["blocks"]) for e in dropped] == [
        ("main", first_response["id"], 1)
    ]


def test_a_fixed_run_sends_every_thinking_block_back_verbatim() -> None:
    fixed = _run("thinking_block_dropped", "fixed")
    status, sentence = _verdict(fixed, "thinking_blocks_preserved")
    assert status == "holds", sentence
    assert sentence.startswith("2 tool-loop turn(s) went back")
    requests = [r for r in fixed.record.journal if r["endpoint"] == "/v1/messages"]
    assert all(r["request"]["thinking"] == "enabled" and r["status"] == 200 for r in requests)
    # The last request carries both earlier turns, each still led by its thinking block.
    assistant = [m for m in requests[-1]["request"]["messages"] if m["role"] == "assistant"]
    assert [[b["type"] for b in m["blocks"]] for m in assistant] == [["thinking", "tool_use"]] * 2
    assert fixed.record.runtime("thinking_dropped") == []


def test_without_thinking_the_thinking_oracle_cannot_judge() -> None:
    [verdict] = check(_run("context_overflow", "fixed").record, ["thinking_blocks_preserved"])
    assert verdict.status == "cannot judge"
    assert verdict.explanation == "cannot judge: no request in the journal enabled thinking"


def test_a_buggy_run_names_the_request_that_outgrew_the_window() -> None:
    buggy = _run("context_overflow", "buggy")
    status, sentence = _verdict(buggy, "context_within_window")
    assert status == "fails"
    assert sentence == (
        "At 6.0 s agent main's request (7 messages) outgrew the model's context window: the API "
        "answered 400 prompt is too long: 6316 tokens > 6000 maximum"
    )
    # It measured by the last usage (under the 4500 threshold) and never asked for a count.
    endpoints = {r["endpoint"] for r in buggy.record.journal}
    assert endpoints == {"/v1/messages"}
    assert buggy.record.runtime("compaction") == []
    last_ok = [r for r in buggy.record.journal if r["status"] == 200][-1]["response"]["usage"]
    assert last_ok["input_tokens"] + last_ok["output_tokens"] < 4500


def test_a_fixed_run_counts_and_compacts_before_the_window() -> None:
    fixed = _run("context_overflow", "fixed")
    status, sentence = _verdict(fixed, "context_within_window")
    assert status == "holds", sentence
    counts = [r for r in fixed.record.journal if r["endpoint"] == "/v1/messages/count_tokens"]
    measured = fixed.record.runtime("context_measured")
    # The first request is far below the threshold: no count. Then one per turn, as journaled.
    assert [e["tokens"] for e in measured] == [c["response"]["input_tokens"] for c in counts]
    assert len(counts) == 3
    assert all(e["counted"] for e in measured)
    (compaction,) = fixed.record.runtime("compaction")
    assert compaction["outcome"] == "compacted"
    assert measured[-1]["tokens"] >= 4500  # the request it would have sent: over the threshold
    sizes = [r["response"]["usage"]["input_tokens"] for r in fixed.record.journal if r["agent"]]
    assert max(sizes) < 6000


def test_far_from_the_threshold_the_fixed_runtime_sends_no_count() -> None:
    # cascade's threshold is the default 150000 tokens: the bound alone rules out a count.
    journal = _run("cascade", "fixed").record.journal
    assert {r["endpoint"] for r in journal} == {"/v1/messages"}


@pytest.mark.parametrize("name", LONG_SESSIONS)
def test_same_seed_same_outcome_and_trace(name: str) -> None:
    scenario, _ = resolve(name)
    outcomes = set()
    for seed in range(6):
        for policy in ("buggy", "fixed"):
            first = run_scenario(scenario, policy=policy, seed=seed, strategy="random")  # type: ignore[arg-type]
            again = run_scenario(scenario, policy=policy, seed=seed, strategy="random")  # type: ignore[arg-type]
            assert first.met, (seed, policy)
            assert first.outcome == again.outcome, (seed, policy)
            assert flatten(first.trace) == flatten(again.trace), (seed, policy)
            assert first.stats["step_hash"] == again.stats["step_hash"]
            assert len({s["trace_id"] for s in first.record.spans}) == 1
            outcomes.add((policy, first.outcome))
    if name.endswith("_random"):
        # The drawn sizes overflow the window for some seeds only.
        assert outcomes == {("buggy", "reproduced"), ("buggy", "held"), ("fixed", "held")}


@pytest.mark.parametrize("name", LONG_SESSIONS[::2])
def test_a_saved_run_replays_and_checks_the_same(name: str, tmp_path: Path) -> None:
    scenario, _ = resolve(name)
    for policy in ("buggy", "fixed"):
        outcome = _run(name, policy)
        run_dir = write_run(outcome, scenario, tmp_path)
        code, output = invoke(["replay", str(run_dir)])
        assert code == 0, output
        assert "trace: identical" in output
        recorded = [(v.name, v.status, v.explanation) for v in outcome.verdicts]
        again = check(load_record(run_dir), scenario.oracle_names)
        assert [(v.name, v.status, v.explanation) for v in again] == recorded


def test_a_bare_trace_still_shows_the_refused_request() -> None:
    # From spans alone (no journal): the API's 400 is there, the turn structure is not.
    record = record_from_trace(_run("thinking_block_dropped", "buggy").trace)
    [verdict] = check(record, ["thinking_blocks_preserved"])
    assert verdict.status == "fails"
    assert "for its thinking blocks: " + _THINKING_FIRST in verdict.explanation
    fixed = record_from_trace(_run("thinking_block_dropped", "fixed").trace)
    [unknown] = check(fixed, ["thinking_blocks_preserved"])
    assert unknown.status == "cannot judge"  # no refusal, but nothing to prove the blocks went back
    overflow = record_from_trace(_run("context_overflow", "buggy").trace)
    [window] = check(overflow, ["context_within_window"])
    assert window.status == "fails"
    assert "prompt is too long: 6316 tokens > 6000 maximum" in window.explanation


def test_a_thinking_budget_must_leave_room_for_the_answer() -> None:
    text = (
        "name: t\ndescription: d\nruntime: {prompt: p, max_tokens: 2048, "
        "thinking: {budget_tokens: 2048}}\nmodel: {agents: {main: {turns: [{text: hi}]}}}\n"
        "oracles: [agents_completed]\nexpect: {buggy: [agents_completed]}\n"
    )
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text)
    assert "runtime.thinking.budget_tokens" in str(caught.value)
    assert "must be below max_tokens (2048)" in str(caught.value)


def test_the_knobs_are_independent_switches() -> None:
    scenario, _ = resolve("context_overflow")
    buggy, fixed = scenario.runtime_config("buggy"), scenario.runtime_config("fixed")
    # Only the measure differs: the scenario keeps buggy's compaction safe.
    assert buggy.policies.compaction == fixed.policies.compaction == "between_turns"
    assert (buggy.policies.context_measure, fixed.policies.context_measure) == (
        "last_usage",
        "count_tokens",
    )
    thinking, _ = resolve("thinking_block_dropped")
    assert thinking.runtime_config("buggy").policies.thinking_blocks == "drop"
    assert thinking.runtime_config("fixed").thinking is not None


def test_an_edited_thinking_block_is_caught_by_the_apis_text() -> None:
    # A runtime that sends the block back altered: the structure is intact, the API refuses it.
    text = (
        "messages.1.content.0: `thinking` or `redacted_thinking` blocks in the latest assistant "
        "message cannot be modified. These blocks must remain as they were in the original "
        "response."
    )
    row = {"seq": 2, "time": 3.0, "agent": "main", "endpoint": "/v1/messages", "status": 400}
    record = RunRecord(
        scenario="s",
        policy="buggy",
        seed=0,
        journal=[{**row, "verdict": {"type": "invalid_request_error", "message": text}}],
    )
    [verdict] = check(record, ["thinking_blocks_preserved"])
    assert verdict.status == "fails"
    assert verdict.explanation == (
        f"The API rejected agent main's request at 3.0 s for its thinking blocks: {text}"
    )
