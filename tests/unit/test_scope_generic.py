"""The scope oracles on hand-made run records: what each says it saw, and when it cannot
judge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.errors import ScenarioError
from harness.oracles import RunRecord, check
from harness.scenarios.model import parse_scenario


def _row(
    seq: int,
    agent: str,
    messages: list[dict[str, Any]],
    *,
    tool_use_ids: list[str] | None = None,
    time: float = 0.0,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "time": time,
        "agent": agent,
        "endpoint": "/v1/messages",
        "status": 200,
        "request": {"messages": messages},
        "response": {"tool_use_ids": tool_use_ids or []},
    }


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def _use(call_id: str, name: str, **given: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": call_id, "name": name, "input": given}],
    }


def _result(call_id: str, text: str) -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call_id, "content": text}],
    }


def _shape(message: dict[str, Any]) -> dict[str, Any]:
    """A message as a journal without content keeps it."""
    blocks = []
    for block in message["content"]:
        entry = {"type": block["type"]}
        if "id" in block:
            entry["id"] = block["id"]
        blocks.append(entry)
    return {"role": message["role"], "blocks": blocks}


def _verdict(record: RunRecord, name: str, **params: Any) -> Any:
    record.params = {name: params}
    (verdict,) = check(record, [name])
    return verdict


def _record(journal: list[dict[str, Any]], **kw: Any) -> RunRecord:
    return RunRecord(scenario="s", policy="buggy", seed=0, journal=journal, **kw)


# -- canary_confined --------------------------------------------------------------------------


def test_canary_in_another_agents_tool_result_fails_naming_where() -> None:
    leak = json.dumps({"scope": "resource", "messages": [{"text": "offer OL-7731"}]})
    journal = [
        _row(1, "bob", [_user("mine?"), _use("t1", "recall"), _result("t1", "OL-7731")]),
        _row(2, "alice", [_user("mine?"), _use("t2", "recall"), _result("t2", leak)], time=4),
    ]
    verdict = _verdict(_record(journal), "canary_confined", canary="OL-7731", allowed=["bob"])
    assert verdict.status == "fails"
    assert verdict.explanation.startswith(
        "At 4.0 s agent alice's request carried the canary 'OL-7731' in a recall result"
    )


def test_canary_seen_only_by_its_owner_holds() -> None:
    journal = [
        _row(1, "bob", [_user("x"), _use("t1", "recall"), _result("t1", "OL-7731")]),
        _row(2, "alice", [_user("x"), _use("t2", "recall"), _result("t2", "nothing")]),
    ]
    verdict = _verdict(_record(journal), "canary_confined", canary="OL-7731", allowed=["bob"])
    assert verdict.status == "holds"
    assert "reached 1 request(s), all of bob" in verdict.explanation


def test_canary_cannot_judge_without_content_or_when_it_appears_nowhere() -> None:
    shapes = [_row(1, "alice", [_shape(_user("OL-7731"))])]
    blind = _verdict(_record(shapes), "canary_confined", canary="OL-7731", allowed=["bob"])
    assert blind.status == "cannot judge"
    assert "capture_content" in blind.explanation
    absent = [_row(1, "alice", [_user("hello")])]
    typo = _verdict(_record(absent), "canary_confined", canary="OL-7713", allowed=["bob"])
    assert typo.status == "cannot judge"
    assert "appears in no request" in typo.explanation


# -- fact_found -------------------------------------------------------------------------------


def test_fact_found_tells_never_asked_from_saw_too_little() -> None:
    thread = json.dumps({"scope": "caller", "context_id": "t2", "hits": 0, "messages": []})
    never = [_row(1, "reader", [_user("freeze?")])]
    asked = [_row(1, "reader", [_user("freeze?"), _use("a", "search"), _result("a", thread)])]
    params = {"fact": "INFRA-212", "agents": ["reader"], "tools": ["search"]}
    not_asked = _verdict(_record(never), "fact_found", **params)
    assert not_asked.status == "fails"
    assert "Agent reader never asked" in not_asked.explanation
    too_little = _verdict(_record(asked), "fact_found", **params)
    assert too_little.status == "fails"
    assert "asked but saw too little" in too_little.explanation
    assert "caller (t2): 1 call(s), 0 hit(s)" in too_little.explanation


def test_fact_found_counts_hits_per_scope() -> None:
    miss = json.dumps({"scope": "caller", "context_id": "t2", "messages": []})
    hit = json.dumps(
        {"scope": "resource", "contexts": ["t1", "t2"], "messages": [{"text": "INFRA-212"}]}
    )
    messages = [
        _user("freeze?"),
        _use("a", "search"),
        _result("a", miss),
        _use("b", "search", scope="resource"),
        _result("b", hit),
    ]
    verdict = _verdict(
        _record([_row(1, "reader", messages)]), "fact_found", fact="INFRA-212", agents=["reader"]
    )
    assert verdict.status == "holds"
    assert "caller (t2): 1 call(s), 0 hit(s); resource (t1, t2): 1 call(s), 1 hit(s)" in (
        verdict.explanation
    )


# -- history_prefix_kept ----------------------------------------------------------------------


def test_history_prefix_kept_sees_a_replaced_earlier_turn() -> None:
    first = [_user("audit"), _use("a", "list"), _result("a", "rows")]
    summary = _user("<compaction-summary>\nthe reader's summary")
    journal = [
        _row(1, "lead", first),
        _row(2, "lead", [summary, _use("b", "spawn"), _result("b", "done")], time=2),
    ]
    verdict = _verdict(_record(journal), "history_prefix_kept", agents=["lead"])
    assert verdict.status == "fails"
    assert "kept only 0 of the 3 messages" in verdict.explanation
    assert 'message beginning "<compaction-summary>' in verdict.explanation
    grown = [_row(1, "lead", first), _row(2, "lead", [*first, _use("b", "spawn")])]
    assert _verdict(_record(grown), "history_prefix_kept", agents=["lead"]).status == "holds"


def test_history_prefix_kept_by_shape_only_says_so() -> None:
    first = [_shape(_user("a")), _shape(_use("a", "list"))]
    journal = [_row(1, "lead", first), _row(2, "lead", [_shape(_user("b"))])]
    verdict = _verdict(_record(journal), "history_prefix_kept")
    assert verdict.status == "fails"
    assert "block types and tool ids only" in verdict.explanation
    alone = _verdict(_record(journal[:1]), "history_prefix_kept")
    assert alone.status == "cannot judge"


# -- own_tool_calls_only ----------------------------------------------------------------------


def test_own_tool_calls_only_names_the_maker_of_a_foreign_call() -> None:
    journal = [
        _row(1, "parent", [_user("go")], tool_use_ids=["p1"]),
        _row(2, "child", [_shape(_user("go")), _shape(_use("p1", "list"))], time=1),
    ]
    verdict = _verdict(_record(journal), "own_tool_calls_only", agents=["child"])
    assert verdict.status == "fails"
    assert "tool call p1 that it never made (made by agent parent)" in verdict.explanation
    own = [
        _row(1, "child", [_user("go")], tool_use_ids=["c1"]),
        _row(2, "child", [_user("go"), _use("c1", "list"), _result("c1", "x")]),
    ]
    assert _verdict(_record(own), "own_tool_calls_only", agents=["child"]).status == "holds"
    nobody = _verdict(_record(own), "own_tool_calls_only", agents=["other"])
    assert nobody.status == "cannot judge"


def test_scope_oracle_parameters_are_checked_when_the_scenario_loads() -> None:
    text = """\
name: tiny
description: x
runtime: {prompt: hi}
model: {agents: {main: {turns: [{text: ok}]}}}
oracles:
  - fact_found: {fact: INFRA-212}
expect: {buggy: [fact_found]}
"""
    with pytest.raises(ScenarioError, match="agents") as info:
        parse_scenario(text)
    assert "fact_found" in str(info.value)
    fine = parse_scenario(text.replace("{fact: INFRA-212}", "{fact: INFRA-212, agents: main}"))
    assert fine.oracle_params["fact_found"]["agents"] == "main"
