"""An oracle without its evidence answers "cannot judge", and a run that depends on such a
verdict is "inconclusive": unknown is never a pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.oracles import NEEDS, ORACLES, RunRecord, Verdict, check, load_record
from harness.scenarios import resolve, run_scenario, write_run
from harness.scenarios.runner import judge


def test_every_builtin_oracle_declares_its_evidence() -> None:
    assert set(NEEDS) == set(ORACLES)
    builtin = [name for name, fn in ORACLES.items() if fn.__module__ == "harness.oracles.builtin"]
    assert len(builtin) == 12
    assert all(NEEDS[name] for name in builtin)


def test_an_oracle_whose_evidence_is_missing_cannot_judge() -> None:
    record = RunRecord(scenario="s", policy="buggy", seed=0, missing={"reconnects": "gone"})
    [verdict] = check(record, ["no_reconnect_while_in_flight"])
    assert (verdict.status, verdict.judged, verdict.holds) == ("cannot judge", False, False)
    assert verdict.explanation == "cannot judge: gone"
    assert not verdict.fails
    assert verdict.to_dict()["verdict"] == "cannot judge"
    [other] = check(record, ["agents_completed"])
    assert other.status == "holds"


@pytest.mark.parametrize(
    ("policy", "verdicts", "outcome"),
    [
        ("buggy", [Verdict.cannot_judge("a", "x"), Verdict("b", True, "")], "inconclusive"),
        ("buggy", [Verdict("a", False, ""), Verdict.cannot_judge("b", "x")], "reproduced"),
        ("fixed", [Verdict("a", True, ""), Verdict.cannot_judge("b", "x")], "inconclusive"),
        ("fixed", [Verdict("a", True, ""), Verdict("b", False, "")], "unexpected"),
        ("fixed", [Verdict("a", True, ""), Verdict("b", True, "")], "held"),
    ],
)
def test_a_run_that_depends_on_an_unjudged_oracle_is_inconclusive(
    policy: str, verdicts: list[Verdict], outcome: str
) -> None:
    scenario, _ = resolve("cascade")
    scenario = scenario.model_copy(
        update={"expect": scenario.expect.model_copy(update={"buggy": ["a"]})}
    )
    assert judge(scenario, policy, verdicts)[0] == outcome  # type: ignore[arg-type]


def test_a_run_directory_without_events_is_judged_from_its_trace(tmp_path: Path) -> None:
    scenario, source = resolve("cascade")
    run_dir = write_run(run_scenario(scenario, policy="buggy", source=source), scenario, tmp_path)
    names = ["no_reconnect_while_in_flight", "all_calls_resolved", "no_leaked_processes"]
    whole = check(load_record(run_dir), names)
    (run_dir / "events.jsonl").unlink()
    rebuilt = check(load_record(run_dir), names)
    assert [v.status for v in whole] == ["fails", "holds", "fails"]
    assert [v.status for v in rebuilt] == ["fails", "cannot judge", "cannot judge"]
    assert rebuilt[0].explanation == whole[0].explanation


def test_a_run_where_no_scheduled_task_queried_the_chat_cannot_pass_the_scope_oracle() -> None:
    # A schedule that never fired (a live run cut short, a budget that ends first) leaves
    # nothing to judge: "0 scheduled chat queries, each with an explicit scope" is no pass.
    empty = RunRecord(scenario="s", policy="fixed", seed=0)
    [verdict] = check(empty, ["scheduled_scope_explicit"])
    assert verdict.status == "cannot judge"
    assert "no scheduled task queried the chat" in verdict.explanation
    interactive = {"kind": "scoped_query", "agent": "main", "automated": False, "explicit": False}
    refused = {"kind": "scope_refused", "agent": "reviewer", "tool": "chat_list_messages"}
    [still] = check(
        RunRecord(scenario="s", policy="fixed", seed=0, runtime_events=[interactive]),
        ["scheduled_scope_explicit"],
    )
    assert still.status == "cannot judge"
    [held] = check(
        RunRecord(scenario="s", policy="fixed", seed=0, runtime_events=[refused]),
        ["scheduled_scope_explicit"],
    )
    assert held.status == "holds"
    assert "1 undeclared query(ies) refused" in held.explanation


def _call(duration: float) -> list[dict[str, object]]:
    started = {"kind": "call_started", "server": "ssh", "tool": "t", "timeout": 150.0, "seq": 1}
    ended = {"kind": "call_ended", "server": "ssh", "tool": "t", "duration": duration, "seq": 2}
    return [started, ended]


@pytest.mark.parametrize(
    ("time_scale", "duration", "holds"),
    [
        (0.01, 160.0, True),  # 10 s late: 100 ms of real time, within 5 % + 1 s + 50 ms
        (0.01, 170.0, False),  # 20 s late: past the slack at this scale
        (0.0001, 400.0, True),  # 25 ms of real time late: a scheduling delay, not an overrun
        (1.0, 160.0, False),  # in real time, 10 s late is an overrun
    ],
)
def test_a_live_deadline_allows_real_timer_slack_at_the_runs_time_scale(
    time_scale: float, duration: float, holds: bool
) -> None:
    record = RunRecord(
        scenario="s", policy="fixed", seed=0, mode="live", time_scale=time_scale,
        runtime_events=_call(duration),
    )  # fmt: skip
    [verdict] = check(record, ["all_calls_resolved"])
    assert verdict.holds is holds, verdict.explanation
