"""The black-box call oracles on records made by hand: a turn's tool_use blocks and the results
sent back (the API journal), and what the fake server logged of each call, on the run's clock."""

from __future__ import annotations

from typing import Any

from harness.oracles import RunRecord, Verdict, check


def _journal(results: dict[str, bool], *, asked: float = 1.0, sent: float = 10.0) -> list[Any]:
    """A response at ``asked`` calling ``mem_ssh`` once per id, and the request at ``sent``
    carrying their results (id -> is_error)."""
    ask = {
        "seq": 1,
        "time": asked,
        "agent": "main",
        "request": {"messages": []},
        "response": {"tool_use_ids": list(results), "tool_use_names": ["mem_ssh"] * len(results)},
    }
    blocks = [
        {"type": "tool_result", "tool_use_id": i, **({"is_error": True} if e else {})}
        for i, e in results.items()
    ]
    back = {
        "seq": 2,
        "time": sent,
        "agent": "main",
        "request": {"messages": [{"role": "user", "blocks": blocks}]},
    }
    return [ask, back]


def _call(rid: str, start: float, *ends: dict[str, Any]) -> list[dict[str, Any]]:
    first = {"time": start, "kind": "request", "method": "tools/call", "tool": "mem_ssh"}
    rows = [{**first, "request_id": rid, "connection": 1}]
    return rows + [{"request_id": rid, "connection": 1, **e} for e in ends]


def _verdict(name: str, journal: list[Any], events: list[dict[str, Any]]) -> Verdict:
    record = RunRecord("hand", "buggy", 0, journal=journal, server_events={"ssh": events})
    [verdict] = check(record, [name])
    return verdict


def test_a_call_given_up_on_without_a_cancel_fails_and_says_when() -> None:
    events = _call("7", 2.0, {"time": 30.0, "kind": "finished"})
    verdict = _verdict("abandoned_calls_cancelled", _journal({"a": True}), events)
    assert verdict.status == "fails"
    assert "(request 7 on ssh) at 10.0 s while the server still ran it" in verdict.explanation
    assert "finished at 30.0 s" in verdict.explanation


def test_a_call_cancelled_on_the_wire_before_the_error_holds() -> None:
    events = _call(
        "7",
        2.0,
        {"time": 9.0, "kind": "cancel_notice"},
        {"time": 9.0, "kind": "cancelled"},
    )
    verdict = _verdict("abandoned_calls_cancelled", _journal({"a": True}), events)
    assert verdict.status == "holds"
    assert verdict.explanation.startswith("1 call(s) given up on")


def test_a_call_that_never_ended_and_was_never_cancelled_fails() -> None:
    verdict = _verdict("abandoned_calls_cancelled", _journal({"a": True}), _call("7", 2.0))
    assert verdict.status == "fails"
    assert "had not finished when the run ended" in verdict.explanation


def test_without_results_sent_back_the_call_oracles_cannot_judge() -> None:
    journal = _journal({"a": False})[:1]
    for name in ("abandoned_calls_cancelled", "tool_errors_flagged"):
        assert _verdict(name, journal, _call("7", 2.0)).status == "cannot judge"


def test_a_server_error_handed_to_the_model_as_a_plain_result_fails() -> None:
    events = _call("7", 2.0, {"time": 3.0, "kind": "errored", "detail": {"is_error": True}})
    verdict = _verdict("tool_errors_flagged", _journal({"a": False}), events)
    assert verdict.status == "fails"
    assert "answered 1 call(s) of mem_ssh with an error" in verdict.explanation
    assert "got 0 error result(s)" in verdict.explanation


def test_a_server_error_flagged_as_an_error_holds_and_a_cut_connection_is_not_an_answer() -> None:
    flagged = _call("7", 2.0, {"time": 3.0, "kind": "errored", "detail": {"is_error": True}})
    assert _verdict("tool_errors_flagged", _journal({"a": True}), flagged).status == "holds"
    cut = _call("7", 2.0, {"time": 3.0, "kind": "errored", "detail": {"code": -32000}})
    verdict = _verdict("tool_errors_flagged", _journal({"a": False}), cut)
    assert verdict.status == "holds"
    assert verdict.explanation == "No server answered a call with an error."
