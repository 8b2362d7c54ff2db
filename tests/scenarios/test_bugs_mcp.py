"""The MCP-connection bug files under scenarios/bugs/: each reproduces under its buggy knobs
and holds under its fixed ones, by seed, decided by the oracle that matches what its users saw."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenarios import load_scenario, parse_scenario, run_scenario
from harness.scenarios.live import run_scenario_live

BUGS = Path(__file__).resolve().parents[2] / "scenarios" / "bugs"


def _verdicts(outcome: object) -> dict[str, str]:
    return {v.name: v.status for v in outcome.verdicts}  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_copilot_cli_4731_evicted_tools_under_buggy_kept_under_fixed(seed: int) -> None:
    scenario = load_scenario(BUGS / "mcp_copilot-cli_4731.yaml")
    buggy = run_scenario(scenario, policy="buggy", seed=seed)
    fixed = run_scenario(scenario, policy="fixed", seed=seed)
    assert (buggy.outcome, fixed.outcome) == ("reproduced", "held")
    assert _verdicts(buggy)["tools_offered"] == "fails"
    assert _verdicts(buggy)["last_call_succeeds"] == "fails"
    refreshes = [e["decision"] for e in buggy.record.runtime("tools_refresh_failed")]
    assert refreshes == ["evicted"]
    assert fixed.record.runtime("tools_refresh") == []


def test_python_sdk_3556_is_live_only_and_in_sim_cannot_judge_a_session_loss() -> None:
    scenario = load_scenario(BUGS / "mcp_python-sdk_3556.yaml")
    with pytest.raises(ScenarioError, match="live mode only") as refused:
        run_scenario(scenario, policy="fixed")
    assert refused.value.field == "modes"
    # Forced into sim, there is no HTTP session to lose in memory: the oracle says so instead
    # of passing.
    forced = scenario.model_copy(update={"modes": ["sim", "live"]})
    outcome = run_scenario(forced, policy="fixed")
    assert _verdicts(outcome)["session_reestablished"] == "cannot judge"


@pytest.mark.integration
def test_python_sdk_3556_live_terminal_vs_reinitialize() -> None:
    scenario = load_scenario(BUGS / "mcp_python-sdk_3556.yaml")
    buggy = run_scenario_live(scenario, policy="buggy")
    fixed = run_scenario_live(scenario, policy="fixed")
    assert (buggy.outcome, fixed.outcome) == ("reproduced", "held"), (
        [v.to_dict() for v in buggy.verdicts],
        [v.to_dict() for v in fixed.verdicts],
    )
    connects = [e["reason"] for e in fixed.record.runtime("connecting")]
    assert connects == ["lazy", "session_not_found"]


@pytest.mark.parametrize("seed", [0, 3])
def test_nanobot_950_a_hung_tool_freezes_the_agent_without_a_timeout(seed: int) -> None:
    scenario = load_scenario(BUGS / "mcp_nanobot_950.yaml")
    buggy = run_scenario(scenario, policy="buggy", seed=seed)
    fixed = run_scenario(scenario, policy="fixed", seed=seed)
    assert (buggy.outcome, fixed.outcome) == ("reproduced", "held")
    assert buggy.record.hung
    assert "never came back" in next(
        v.explanation for v in buggy.verdicts if v.name == "tool_results_within"
    )
    ended = [(e["tool"], e["outcome"]) for e in fixed.record.runtime("call_ended")]
    assert ended == [("sync", "timeout"), ("list_notes", "ok")]


@pytest.mark.parametrize("seed", [0, 5])
def test_gsd_pi_1290_parallel_first_calls_orphan_sessions_without_the_lock(seed: int) -> None:
    scenario = load_scenario(BUGS / "mcp_gsd-pi_1290.yaml")
    buggy = run_scenario(scenario, policy="buggy", seed=seed)
    fixed = run_scenario(scenario, policy="fixed", seed=seed)
    assert (buggy.outcome, fixed.outcome) == ("reproduced", "held")
    lazy = [e for e in buggy.record.runtime("connecting") if e["reason"] == "lazy"]
    assert len(lazy) == 3
    assert [e["reason"] for e in fixed.record.runtime("connecting")] == ["catalogue", "lazy"]


@pytest.mark.integration
@pytest.mark.slow
def test_python_sdk_1811_live_a_silent_event_stream_hangs_a_call_without_a_read_timeout() -> None:
    scenario = load_scenario(BUGS / "mcp_python-sdk_1811.yaml")
    buggy = run_scenario_live(scenario, policy="buggy")
    fixed = run_scenario_live(scenario, policy="fixed")
    assert (buggy.outcome, fixed.outcome) == ("reproduced", "held"), (
        [v.to_dict() for v in buggy.verdicts],
        [v.to_dict() for v in fixed.verdicts],
    )
    ended = [(e["tool"], e["outcome"]) for e in fixed.record.runtime("call_ended")]
    assert ended == [("run_query", "timeout"), ("row_count", "ok")]


@pytest.mark.parametrize("seed", [0, 2])
def test_python_sdk_1811_in_sim_by_seed(seed: int) -> None:
    scenario = load_scenario(BUGS / "mcp_python-sdk_1811.yaml")
    buggy = run_scenario(scenario, policy="buggy", seed=seed)
    fixed = run_scenario(scenario, policy="fixed", seed=seed)
    assert (buggy.outcome, fixed.outcome) == ("reproduced", "held")


def _draw(outcome: object) -> float:
    return float(outcome.draws["/faults/0/after"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5])
def test_python_sdk_2416_a_cancel_crossing_its_answer_crashes_the_server_under_buggy(
    seed: int,
) -> None:
    scenario = load_scenario(BUGS / "mcp_python-sdk_2416.yaml")
    buggy = run_scenario(scenario, policy="buggy", seed=seed)
    fixed = run_scenario(scenario, policy="fixed", seed=seed)
    assert fixed.outcome == "held"
    # The answers spend 2 ms on the wire after the 1 s lookups: a cancel drawn inside that
    # window crosses them; earlier it stops the handlers, later there is nothing to cancel.
    crosses = 1.0 < _draw(buggy) < 1.002
    assert buggy.outcome == ("reproduced" if crosses else "held")
    crashed = [e for e in buggy.record.server_events["index"] if e["kind"] == "crashed"]
    assert len(crashed) == (1 if crosses else 0)
    crossed = [
        e
        for e in fixed.record.server_events["index"]
        if e["kind"] == "cancel_notice" and e.get("detail", {}).get("after_response")
    ]
    # Under fixed the same cancels arrive after the answers, and are ignored.
    assert bool(crossed) == crosses
    if crosses:
        assert crashed[0]["detail"]["error"] == "AssertionError: Request already responded to"
        assert _verdicts(buggy)["last_call_succeeds"] == "fails"


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_qwen_code_11272_a_cancel_that_aborts_the_transport_leaves_the_server_disconnected(
    seed: int,
) -> None:
    path = BUGS / "mcp_qwen-code_11272.yaml"
    scenario = load_scenario(path)
    buggy = run_scenario(scenario, policy="buggy", seed=seed)
    fixed = run_scenario(scenario, policy="fixed", seed=seed)
    assert (buggy.outcome, fixed.outcome) == ("reproduced", "held")
    assert [e["then"] for e in buggy.record.runtime("transport_aborted")] == ["disconnected"]
    assert [e["tool"] for e in buggy.record.runtime("call_refused")] == ["build_status"]
    # Under the fix the cancel is a notification: one session for both calls.
    assert fixed.record.runtime("transport_aborted") == []
    assert len(fixed.record.runtime("connected")) == 1
    # The abort that re-arms the connection (qwen-code PR #11466) holds as well: the later call
    # opens a new session.
    rearm = parse_scenario(
        path.read_text(encoding="utf-8").replace(
            "fixed: {cancel_effect: notify}", "fixed: {cancel_effect: abort_transport}"
        )
    )
    rearmed = run_scenario(rearm, policy="fixed", seed=seed)
    assert rearmed.outcome == "held"
    assert [e["then"] for e in rearmed.record.runtime("transport_aborted")] == [
        "reopen_on_next_call"
    ]
    assert len(rearmed.record.runtime("connected")) == 2


@pytest.mark.integration
def test_qwen_code_11272_live_the_abort_ends_the_stdio_server_and_nothing_restarts_it() -> None:
    scenario = load_scenario(BUGS / "mcp_qwen-code_11272.yaml")
    buggy = run_scenario_live(scenario, policy="buggy")
    fixed = run_scenario_live(scenario, policy="fixed")
    assert (buggy.outcome, fixed.outcome) == ("reproduced", "held"), (
        [v.to_dict() for v in buggy.verdicts],
        [v.to_dict() for v in fixed.verdicts],
    )
    events = buggy.record.server_events["builds"]
    kinds = [e["kind"] for e in events]
    # The server process ended with the abort, no call reached it after, and it never started
    # again.
    assert kinds.count("started") == 1
    assert "stopped" in kinds
    after = events[kinds.index("stopped") :]
    assert [e for e in after if e.get("method") == "tools/call"] == []
    assert [e["kind"] for e in fixed.record.server_events["builds"]].count("started") == 1
