"""The black-box reconnect oracles on records made by hand: what the fake servers logged (each
connection's start, calls, failures and stop) and the fault plan's kills, on the run's clock."""

from __future__ import annotations

from typing import Any

from harness.oracles import RunRecord, check


def _ev(time: float, kind: str, conn: int, **extra: Any) -> dict[str, Any]:
    return {"time": time, "kind": kind, "connection": conn, **extra}


def _call(time: float, conn: int, rid: str, **extra: Any) -> dict[str, Any]:
    return _ev(time, "request", conn, method="tools/call", tool="mem_ssh", request_id=rid, **extra)


def _record(events: list[dict[str, Any]], **fields: Any) -> RunRecord:
    return RunRecord("hand", "buggy", 0, server_events={"ssh": events}, **fields)


def _statuses(record: RunRecord) -> dict[str, str]:
    names = [
        "one_reconnect_per_failure",
        "no_duplicate_server_after_failure",
        "reconnected_after_server_death",
    ]
    return {v.name: v.status for v in check(record, names)}


def _journal_asking_at(time: float) -> list[dict[str, Any]]:
    row = {"seq": 3, "time": time, "status": 200, "request": {"messages": []}}
    row["response"] = {"tool_use_ids": ["toolu_1"], "tool_use_names": ["mcp__ssh__mem_ssh"]}
    return [row]


def test_a_crash_with_no_new_connection_while_the_model_asks_again_fails() -> None:
    events = [
        _ev(0, "started", 1),
        _call(1, 1, "3"),
        _ev(5, "crashed", 1, method="tools/call", tool="mem_ssh", request_id="3"),
    ]
    record = _record(events, journal=_journal_asking_at(9.0))
    verdicts = {v.name: v for v in check(record, ["reconnected_after_server_death"])}
    verdict = verdicts["reconnected_after_server_death"]
    assert verdict.status == "fails"
    assert "died at 5.0 s" in verdict.explanation
    assert "mcp__ssh__mem_ssh" in verdict.explanation


def test_a_death_nobody_needed_afterwards_cannot_be_judged() -> None:
    events = [_ev(0, "started", 1), _call(1, 1, "3"), _ev(5, "crashed", 1)]
    assert _statuses(_record(events))["reconnected_after_server_death"] == "cannot judge"


def test_a_kill_of_the_plan_then_two_replacements_races() -> None:
    events = [
        _ev(0, "started", 1, process=100),
        _call(1, 1, "3", process=100),
        # The plan SIGKILLed process 100: it logged nothing more. Two processes replaced it.
        _ev(7, "started", 1, process=101),
        _ev(7.5, "started", 1, process=102),
        _call(8, 1, "1", process=102),
    ]
    kill = {"time": 4.0, "after": 1.0, "type": "kill", "target": "ssh", "kind": "applied"}
    record = _record(events, fault_events=[kill | {"process": 100}])
    assert _statuses(record) == {
        "one_reconnect_per_failure": "fails",
        "no_duplicate_server_after_failure": "fails",
        "reconnected_after_server_death": "holds",
    }


def test_one_replacement_after_a_kill_holds_and_a_runtime_per_call_is_its_own_baseline() -> None:
    events = [
        # Two connections at once from the start (a connection per call).
        _ev(0, "started", 1, process=100),
        _ev(0, "started", 1, process=200),
        _call(1, 1, "3", process=100),
        _call(1, 1, "3", process=200),
        _ev(3, "finished", 1, method="tools/call", request_id="3", process=200),
        _ev(3, "stopped", 1, process=200),
        _ev(7, "started", 1, process=101),
        _call(7, 1, "1", process=101),
    ]
    kill = {"time": 5.0, "type": "kill", "target": "ssh", "kind": "applied", "process": 100}
    assert _statuses(_record(events, fault_events=[kill])) == {
        "one_reconnect_per_failure": "holds",
        "no_duplicate_server_after_failure": "holds",
        "reconnected_after_server_death": "holds",
    }


def test_live_records_off_the_run_clock_cannot_be_judged() -> None:
    events = [_ev(0, "started", 1, process=100), _ev(5, "crashed", 1, process=100)]
    live = _record(events, mode="live")
    assert set(_statuses(live).values()) == {"cannot judge"}
    on_clock = [e | {"clock": "run"} for e in events]
    kill = {"time": 5.0, "type": "kill", "target": "ssh", "kind": "applied"}
    blind = _record(on_clock, mode="live", fault_events=[kill])
    assert "fault plan" in check(blind, ["one_reconnect_per_failure"])[0].explanation
