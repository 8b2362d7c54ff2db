"""The history oracles on hand-made records: what each sentence says, and "cannot judge"
without its evidence."""

from __future__ import annotations

from typing import Any

from harness.oracles import RunRecord, check


def _record(events: list[dict[str, Any]], **extra: Any) -> RunRecord:
    return RunRecord(
        scenario="s",
        policy="buggy",
        seed=0,
        runtime_events=[{"source": "runtime", **e} for e in events],
        **extra,
    )


_CALL = {
    "role": "assistant",
    "content": [{"type": "tool_use", "id": "t1", "name": "x", "input": {}}],
}
_RESULT = {
    "role": "user",
    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}],
}
_USER = {"role": "user", "content": [{"type": "text", "text": "go"}]}


def _stored(thread: str, messages: list[dict[str, Any]], rows: list[int]) -> dict[str, Any]:
    return {
        "kind": "thread_stored",
        "thread": thread,
        "messages": messages,
        "rows": [{"id": i} for i in rows],
    }


def test_a_thread_ending_in_an_unanswered_call_is_refused_on_reload() -> None:
    record = _record([_stored("chat", [_USER, _CALL], [1, 2])])
    (verdict,) = check(record, ["persisted_history_valid"])
    assert verdict.status == "fails"
    assert verdict.explanation.startswith(
        "Thread chat as persisted (2 messages), reloaded with one more user turn, is refused "
        "by the API: messages.1: `tool_use` ids were found without `tool_result` blocks"
    )


def test_a_complete_thread_passes_on_reload() -> None:
    record = _record([_stored("chat", [_USER, _CALL, _RESULT], [1, 2, 3])])
    (verdict,) = check(record, ["persisted_history_valid"])
    assert verdict.status == "holds"
    assert verdict.explanation.endswith("validation: chat: 3 message(s).")


def test_a_write_neither_kept_nor_summarized_is_lost() -> None:
    events = [
        {"kind": "thread_written", "thread": "t", "agent": "a", "row_ids": [1, 2], "time": 0.0},
        {"kind": "thread_written", "thread": "t", "agent": "b", "row_ids": [3], "time": 5.0},
        {"kind": "thread_compacted", "thread": "t", "summary_ids": [4], "covered_ids": [1]},
        _stored("t", [], [4, 2]),
    ]
    (verdict,) = check(_record(events), ["thread_writes_survive"])
    assert verdict.status == "fails"
    assert verdict.explanation == (
        "1 of 3 message(s) written to persisted threads are gone: the first, written by b to "
        "thread t at 5.0 s, is neither in the thread nor in a summary that covers it."
    )
    only_a = _record(events, params={"thread_writes_survive": {"agent": "a"}})
    assert check(only_a, ["thread_writes_survive"])[0].status == "holds"


def test_history_oracles_cannot_judge_without_threads() -> None:
    blind = _record([], missing={"threads": "the runtime under test is a black box"})
    for verdict in check(blind, ["persisted_history_valid", "thread_writes_survive"]):
        assert verdict.status == "cannot judge"
        assert "black box" in verdict.explanation
    # A run that persisted nothing gives no evidence either.
    for verdict in check(_record([]), ["persisted_history_valid", "thread_writes_survive"]):
        assert verdict.status == "cannot judge"


def _calls(n: int) -> dict[str, list[dict[str, Any]]]:
    return {
        "ssh": [
            {
                "kind": "request",
                "method": "tools/call",
                "tool": "mem_ssh",
                "server": "ssh",
                "time": float(i),
            }
            for i in range(n)
        ]
    }


def test_tool_calls_at_most_counts_what_the_servers_received() -> None:
    over = _record([], server_events=_calls(3), params={"tool_calls_at_most": {"max": 1}})
    (verdict,) = check(over, ["tool_calls_at_most"])
    assert verdict.status == "fails"
    assert verdict.explanation == (
        "The servers received 3 tool call(s) (mem_ssh x3), more than the 1 allowed; the first "
        "past the limit, mem_ssh on ssh, at 1.0 s."
    )
    within = _record([], server_events=_calls(1), params={"tool_calls_at_most": {"max": 1}})
    assert check(within, ["tool_calls_at_most"])[0].status == "holds"
    unset = _record([], server_events=_calls(1))
    assert check(unset, ["tool_calls_at_most"])[0].status == "cannot judge"
