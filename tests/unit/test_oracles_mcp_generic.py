"""The generic MCP oracles on hand-made records: each can hold, fail, and say it cannot judge."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import ConfigError
from harness.oracles import RunRecord, check


def _row(seq: int, time: float, tools: list[str] | None, messages: list[Any], uses: list[str]):
    request: dict[str, Any] = {"messages": messages}
    if tools is not None:
        request["tools"] = tools
    return {
        "seq": seq,
        "time": time,
        "agent": "main",
        "endpoint": "/v1/messages",
        "request": request,
        "response": {"tool_use_ids": uses},
    }


def _use(uid: str, name: str) -> dict[str, Any]:
    return {"role": "assistant", "blocks": [{"type": "tool_use", "id": uid, "name": name}]}


def _result(uid: str, error: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": uid}
    if error:
        block["is_error"] = True
    return {"role": "user", "blocks": [block]}


def _record(journal: list[dict[str, Any]], **params: Any) -> RunRecord:
    return RunRecord("s", "buggy", 0, journal=journal, params=params)


def _one(record: RunRecord, name: str) -> Any:
    (verdict,) = check(record, [name])
    return verdict


USER = {"role": "user", "blocks": [{"type": "text"}]}
EVICTED = [
    _row(1, 0.0, ["search", "read"], [USER], ["u1"]),
    _row(2, 120.0, [], [USER, _use("u1", "search"), _result("u1", True)], ["u2"]),
    _row(
        3,
        130.0,
        [],
        [USER, _use("u1", "search"), _result("u1", True), _use("u2", "read"), _result("u2", True)],
        [],
    ),
]
KEPT = [
    _row(1, 0.0, ["search", "read"], [USER], ["u1"]),
    _row(2, 60.0, ["search", "read"], [USER, _use("u1", "search"), _result("u1", True)], ["u2"]),
    _row(
        3,
        61.0,
        ["search", "read"],
        [USER, _use("u1", "search"), _result("u1", True), _use("u2", "read"), _result("u2")],
        [],
    ),
]


def test_last_call_succeeds() -> None:
    params = {"last_call_succeeds": {"tool": "read"}}
    assert _one(_record(EVICTED, **params), "last_call_succeeds").status == "fails"
    assert _one(_record(KEPT, **params), "last_call_succeeds").status == "holds"
    none = {"last_call_succeeds": {"tool": "write"}}
    assert _one(_record(KEPT, **none), "last_call_succeeds").status == "cannot judge"


def test_tool_results_within() -> None:
    tight = {"tool_results_within": {"seconds": 90}}
    late = _one(_record(EVICTED, **tight), "tool_results_within")
    assert late.status == "fails"
    assert "search call issued at 0.0 s came back only at 120.0 s" in late.explanation
    assert _one(_record(KEPT, **tight), "tool_results_within").status == "holds"
    unanswered = KEPT[:2]
    verdict = _one(_record(unanswered, **tight), "tool_results_within")
    assert verdict.status == "fails"
    assert "never came back" in verdict.explanation


def test_tool_results_within_knows_a_hung_call_by_its_tool() -> None:
    # The runtime hung on the round: no later request shows the calls, only the response that
    # issued them names their tools. Filtering by tool must still find (and fail) them.
    hung = _row(1, 0.0, ["exec"], [USER], ["u1", "u2"])
    hung["response"]["tool_use_names"] = ["exec", "exec"]
    params = {"tool_results_within": {"seconds": 60, "tool": "exec"}}
    verdict = _one(_record([hung], **params), "tool_results_within")
    assert verdict.status == "fails"
    assert "The exec call issued at 0.0 s never came back" in verdict.explanation
    assert "(2 of 2 call(s) late or unanswered)" in verdict.explanation
    other = {"tool_results_within": {"seconds": 60, "tool": "read"}}
    assert _one(_record([hung], **other), "tool_results_within").status == "cannot judge"


def test_a_missing_parameter_names_the_oracle() -> None:
    with pytest.raises(ConfigError, match="needs parameter"):
        check(_record(KEPT), ["tool_results_within"])


def _events(*kinds: tuple[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {"api": [{"kind": k, "time": float(i), **extra} for i, (k, extra) in enumerate(kinds)]}


def test_session_reestablished() -> None:
    lost = ("sessions_forgotten", {"detail": {"sessions": 1}})
    init = ("request", {"method": "initialize"})
    done = ("finished", {"method": "tools/call"})
    for kinds, status in [
        ((lost, done), "fails"),
        ((lost, init), "fails"),
        ((lost, init, done), "holds"),
        ((("sessions_forgotten", {"detail": {"sessions": 0}}), done), "cannot judge"),
    ]:
        record = RunRecord("s", "buggy", 0, server_events=_events(*kinds))
        assert _one(record, "session_reestablished").status == status, kinds
