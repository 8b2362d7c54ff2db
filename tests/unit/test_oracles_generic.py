"""The generic, parameterised oracles on hand-built records: each fails, holds and cannot
judge, and its sentence says what was seen."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ScenarioError
from harness.oracles import PARAMS, RunRecord, Verdict, check
from harness.scenarios.model import parse_scenario


def judge(record: RunRecord, label: str, params: dict[str, Any] | None = None) -> Verdict:
    if params is not None:
        record.params[label] = params
    (verdict,) = check(record, [label])
    return verdict


def rec(**kw: Any) -> RunRecord:
    return RunRecord(scenario="s", policy="buggy", seed=1, **kw)


def answers(main: str | None, **tasks: str) -> dict[str, Any]:
    child = {"name": "B", "stop": "end_turn", "text": "B saw SECRET-1", "children": []}
    out: dict[str, Any] = {
        "main": None
        if main is None
        else {"name": "main", "stop": "end_turn", "text": main, "children": [child]},
        "tasks": {t: {"name": "reviewer", "stop": "end_turn", "text": x} for t, x in tasks.items()},
    }
    return out


# -- answers ---------------------------------------------------------------------------------


def test_answer_contains_fails_with_what_was_answered() -> None:
    v = judge(rec(result=answers("db1 down")), "answer_contains", {"text": "db1 is up"})
    assert v.status == "fails"
    assert "agent main answered 'db1 down'" in v.explanation
    assert "'db1 is up'" in v.explanation


def test_answer_contains_holds_and_quotes_the_match() -> None:
    v = judge(rec(result=answers("fleet: db1 is up")), "answer_contains", {"regex": r"db\d is"})
    assert v.status == "holds"
    assert "db1 is up" in v.explanation


def test_answer_selection_by_task_and_subagent() -> None:
    record = rec(result=answers("main text", review="General and Blog"))
    assert judge(record, "answer_contains", {"text": "Blog", "task": "review"}).holds
    assert judge(record, "answer_contains#all", {"text": "Blog"}).fails  # main lacks it
    sub = judge(record, "answer_never_contains", {"text": "SECRET", "agent": "B"})
    assert sub.fails
    assert "agent B's" in sub.explanation


def test_answer_never_contains_cannot_judge_without_an_answer() -> None:
    v = judge(rec(result=answers(None)), "answer_never_contains", {"text": "x"})
    assert v.status == "cannot judge"
    assert not v.holds
    # Without the answers at all the registry says so before the oracle runs.
    missing = rec(missing={"result": "run.json has no result"})
    assert judge(missing, "answer_contains", {"text": "x"}).status == "cannot judge"


def test_labels_are_separate_verdicts_with_their_own_params() -> None:
    record = rec(result=answers("all good"))
    record.params = {"answer_contains#good": {"text": "good"}, "answer_contains#bad": {"text": "x"}}
    good, bad = check(record, ["answer_contains#good", "answer_contains#bad"])
    assert (good.name, good.status) == ("answer_contains#good", "holds")
    assert (bad.name, bad.status) == ("answer_contains#bad", "fails")


def test_missing_params_cannot_judge_instead_of_raising() -> None:
    v = judge(rec(result=answers("x")), "answer_contains")
    assert v.status == "cannot judge"
    assert "no parameters" in v.explanation


# -- the journal -----------------------------------------------------------------------------


def row(seq: int, messages: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    request = {"messages": messages, "tools": kw.pop("tools", ["mem_ssh"])}
    return {
        "seq": seq,
        "time": kw.pop("time", 0.0),
        "endpoint": "/v1/messages",
        "agent": kw.pop("agent", "main"),
        "status": 200,
        "request": request,
        **kw,
    }


def turn_with_results(*results: tuple[str, str, str, bool]) -> list[dict[str, Any]]:
    uses = [{"type": "tool_use", "id": i, "name": tool, "input": {}} for i, tool, _, _ in results]
    blocks = [
        {
            "type": "tool_result",
            "tool_use_id": i,
            "content": [{"type": "text", "text": text}],
            "is_error": err,
        }
        for i, _, text, err in results
    ]
    return [
        {"role": "user", "content": "check"},
        {"role": "assistant", "content": uses},
        {"role": "user", "content": blocks},
    ]


def test_tool_result_oracles_read_every_result_by_tool() -> None:
    messages = turn_with_results(
        ("t1", "mem_ssh", "up 3 days", False), ("t2", "vault_get", "token=abc123", False)
    )
    record = rec(journal=[row(1, [messages[0]]), row(2, messages, time=5.0)])
    leak = judge(record, "tool_result_never_contains", {"regex": "token=\\w+"})
    assert leak.fails
    assert "vault_get result t2 (sent in request 2 by agent main)" in leak.explanation
    assert judge(
        record, "tool_result_never_contains#ssh", {"text": "token", "tool": "mem_ssh"}
    ).holds
    assert judge(record, "tool_result_contains", {"text": "up 3", "tool": "mem_ssh"}).holds
    miss = judge(record, "tool_result_contains#v", {"text": "up", "tool": "vault_get"})
    assert miss.fails
    assert "read 'token=abc123'" in miss.explanation


def test_tool_result_oracles_cannot_judge_a_summarised_journal() -> None:
    summary = [{"role": "user", "blocks": [{"type": "tool_result", "tool_use_id": "t1"}]}]
    v = judge(rec(journal=[row(1, summary)]), "tool_result_contains", {"text": "x"})
    assert v.status == "cannot judge"
    assert "capture_content" in v.explanation


def test_request_never_contains_names_the_request() -> None:
    record = rec(
        journal=[
            row(1, [{"role": "user", "content": "hello"}], agent="A"),
            row(2, [{"role": "user", "content": "CANARY-7 from tab X"}], agent="B", time=3.0),
        ]
    )
    v = judge(record, "request_never_contains", {"text": "CANARY-7", "agent": "B"})
    assert v.fails
    assert "request 2 (agent B, at 3.0 s)" in v.explanation
    assert judge(record, "request_never_contains#a", {"text": "CANARY-7", "agent": "A"}).holds
    assert judge(record, "request_contains", {"text": "hello"}).holds
    none = judge(record, "request_contains#c", {"text": "hello", "agent": "C"})
    assert none.status == "cannot judge"


def test_tools_offered_after_a_time() -> None:
    record = rec(
        journal=[
            row(1, [], tools=["mem_ssh", "chat_list_messages"]),
            row(2, [], tools=["chat_list_messages"], time=160.0, agent="A"),
        ]
    )
    v = judge(record, "tools_offered", {"tools": ["mem_ssh"]})
    assert v.fails
    assert "request 2 (agent A, at 160.0 s), offered: chat_list_messages" in v.explanation
    assert judge(record, "tools_offered#early", {"tools": ["mem_ssh"], "after": 200}).status == (
        "cannot judge"
    )
    old = rec(journal=[{"seq": 1, "time": 0.0, "request": {"messages": []}}])
    assert "names no tools offered" in judge(old, "tools_offered", {"tools": ["x"]}).explanation


def test_tools_offered_once_offered_judges_from_each_tools_first_offering() -> None:
    lazy = [
        row(1, [], tools=[]),
        row(2, [], tools=["search", "read"], time=10.0),
        row(3, [], tools=[], time=120.0),
        row(4, [], tools=["sum"], time=121.0, agent="summariser"),
    ]
    once = {"tools": ["read"], "once_offered": True}
    v = judge(rec(journal=lazy), "tools_offered", once)
    assert v.fails
    assert "1 of 2 API request(s) from each tool's first offering on" in v.explanation
    assert "request 3 (agent main, at 120.0 s), offered: none" in v.explanation
    kept = [*lazy[:2], row(3, [], tools=["search", "read"], time=120.0), *lazy[3:]]
    assert judge(rec(journal=kept), "tools_offered#k", once).holds
    # Without once_offered the first request (before the session opened) already lacks it.
    assert judge(rec(journal=kept), "tools_offered#all", {"tools": ["read"]}).fails
    never = judge(rec(journal=kept), "tools_offered#n", {"tools": ["write"], "once_offered": True})
    assert never.status == "cannot judge"


def test_tools_offered_a_request_without_tools_offered_none() -> None:
    bare = row(2, [], time=5.0)
    del bare["request"]["tools"]
    v = judge(rec(journal=[row(1, []), bare]), "tools_offered", {"tools": ["mem_ssh"]})
    assert v.fails
    assert "request 2 (agent main, at 5.0 s), offered: none" in v.explanation


# -- the servers' records --------------------------------------------------------------------


def ev(kind: str, time: float, connection: int = 1, **kw: Any) -> dict[str, Any]:
    return {"kind": kind, "time": time, "connection": connection, "server": "ssh", **kw}


def call(rid: str, time: float, connection: int = 1, **args: Any) -> dict[str, Any]:
    return ev(
        "request",
        time,
        connection,
        method="tools/call",
        tool="mem_ssh",
        request_id=rid,
        arguments=args,
    )


def respawn_events() -> list[dict[str, Any]]:
    return [
        ev("started", 0.0),
        call("3", 0.0, host="web1"),
        call("4", 100.0, host="db1"),
        ev("cancelled", 150.0, request_id="3", method="tools/call", tool="mem_ssh"),
        ev("cancel_notice", 150.0, request_id="3"),
        ev("cancelled", 150.0, request_id="4", method="tools/call", tool="mem_ssh"),
        ev("stopped", 150.0),
        ev("started", 150.0, 2),
        call("2", 151.0, 2, host="db1"),
        ev("finished", 152.0, 2, request_id="2", method="tools/call", tool="mem_ssh"),
    ]


def test_no_server_respawned_fails_and_holds() -> None:
    v = judge(rec(server_events={"ssh": respawn_events()}), "no_server_respawned", {})
    assert v.fails
    assert v.explanation == (
        "ssh was started 2 times: connection 2 at 150.0 s; the first stopped at 150.0 s."
    )
    once = rec(server_events={"ssh": respawn_events()[:3]})
    assert judge(once, "no_server_respawned", {}).holds
    assert judge(once, "no_server_respawned#x", {"server": "vault"}).status == "cannot judge"


def test_no_server_respawned_with_crashed_fails_on_a_crash_without_a_restart() -> None:
    crash = ev("crashed", 5.0, method="tools/call", tool="mem_ssh", request_id="3")
    record = rec(server_events={"ssh": [*respawn_events()[:3], crash]})
    assert judge(record, "no_server_respawned", {}).holds
    v = judge(record, "no_server_respawned#c", {"crashed": True})
    assert v.fails
    assert v.explanation == "ssh crashed at 5.0 s (during tools/call mem_ssh, request 3)."
    calm = rec(server_events={"ssh": respawn_events()[:3]})
    v = judge(calm, "no_server_respawned#c", {"crashed": True})
    assert v.explanation == (
        "Each of 1 server(s) was started once and never again and never crashed."
    )


def test_at_most_sessions_counts_total_at_once_and_processes() -> None:
    record = rec(server_events={"ssh": respawn_events()})
    assert judge(record, "at_most_sessions", {"n": 1}).fails
    assert judge(record, "at_most_sessions#once", {"n": 1, "at_once": True}).holds
    procs = judge(record, "at_most_sessions#p", {"n": 1, "count": "processes"})
    assert procs.status == "cannot judge"
    live = [dict(e, process=10 if e["connection"] == 1 else 11) for e in respawn_events()]
    v = judge(
        rec(server_events={"ssh": live}), "at_most_sessions#p", {"n": 1, "count": "processes"}
    )
    assert v.fails
    assert v.explanation.startswith("ssh had 2 process(es) (reached at 150.0 s)")


def test_at_most_sessions_at_once_follows_the_record_order_at_one_instant() -> None:
    # Two replacements started at the same instant, before either closed: two at once.
    events = [
        ev("started", 0.0),
        ev("started", 150.0, 2),
        ev("stopped", 150.0),
        ev("started", 150.0, 3),
        ev("stopped", 150.0, 2),
        ev("stopped", 150.0, 3),
    ]
    v = judge(rec(server_events={"ssh": events}), "at_most_sessions", {"n": 1, "at_once": True})
    assert v.fails
    assert v.explanation == "ssh had 2 session(s) at once (reached at 150.0 s); at most 1 allowed."


def test_no_collateral_failures_finds_a_call_that_succeeded_again() -> None:
    v = judge(rec(server_events={"ssh": respawn_events()}), "no_collateral_failures", {})
    assert v.fails
    assert 'mem_ssh {"host": "db1"} (request 4 on ssh connection 1) was cut off at 150.0 s' in (
        v.explanation
    )
    assert "beside mem_ssh (request 3, cancelled)" in v.explanation
    assert "(request 2, connection 2) finished at 152.0 s" in v.explanation
    # The timed-out call itself was cancelled by the client (a notice came): its own failure.
    no_retry = [e for e in respawn_events() if e.get("connection") == 1]
    assert judge(rec(server_events={"ssh": no_retry}), "no_collateral_failures", {}).holds
    assert (
        judge(rec(server_events={"ssh": [ev("started", 0)]}), "no_collateral_failures", {}).status
        == "cannot judge"
    )


def test_nothing_written_by_caller_context() -> None:
    events = [
        ev(
            "request",
            5.0,
            method="tools/call",
            tool="chat_post_message",
            request_id="7",
            context_id="Blog",
            arguments={"context_id": "General", "text": "hi"},
        ),
        ev(
            "request",
            6.0,
            method="tools/call",
            tool="chat_post_message",
            request_id="8",
            context_id="Blog",
            arguments={"context_id": "Blog", "text": "hi"},
        ),
    ]
    record = rec(server_events={"chat": events})
    params = {"context": "General", "by": "Blog", "tools": ["chat_post_message"]}
    v = judge(record, "nothing_written", params)
    assert v.fails
    assert "1 of 2 write(s) went to context General from context Blog" in v.explanation
    assert "request 7 on chat) at 5.0 s, called from context Blog" in v.explanation
    other = {"context": "Dahlia", "tools": ["chat_post_message"]}
    assert judge(record, "nothing_written#d", other).holds
    assert judge(rec(), "nothing_written#d", other).status == "cannot judge"


def test_ends_within() -> None:
    events = respawn_events()
    record = rec(server_events={"ssh": events}, journal=[row(1, [], time=0.0)])
    v = judge(record, "ends_within", {"seconds": 150})
    assert v.fails
    assert "the last, mem_ssh (request 2) on ssh finished, at 152.0 s" in v.explanation
    assert judge(record, "ends_within#late", {"seconds": 152}).holds
    open_call = rec(server_events={"ssh": [ev("started", 0), call("1", 3.0)]})
    stuck = judge(open_call, "ends_within", {"seconds": 999})
    assert stuck.fails
    assert "never ended" in stuck.explanation
    assert judge(rec(), "ends_within", {"seconds": 5}).status == "cannot judge"
    assert judge(rec(hung=True, pending=["agent main"]), "ends_within", {"seconds": 5}).fails


# -- scenario files --------------------------------------------------------------------------

_SCENARIO = """
name: p
description: d
model: {{agents: {{main: {{turns: [{{text: hi}}]}}}}}}
runtime: {{prompt: go}}
oracles:
{oracles}
expect: {{buggy: [{first}]}}
"""


def scenario(oracles: str, first: str) -> None:
    parse_scenario(_SCENARIO.format(oracles=oracles, first=first))


def test_scenario_params_are_validated_at_load_with_their_field() -> None:
    scenario(
        "  - answer_contains#a: {text: hi}\n  - answer_contains#b: {regex: h.}", "answer_contains#a"
    )
    with pytest.raises(ScenarioError, match=r"give text or regex"):
        scenario("  - answer_contains: {agent: main}", "answer_contains")
    with pytest.raises(ScenarioError, match=r"sessions\.n': oracle at_most_sessions: Input should"):
        scenario("  - at_most_sessions: {n: 0}", "at_most_sessions")
    with pytest.raises(ScenarioError, match=r"Extra inputs"):
        scenario("  - ends_within: {seconds: 1, bogus: 2}", "ends_within")
    with pytest.raises(ScenarioError, match=r"listed twice"):
        scenario(
            "  - answer_contains: {text: a}\n  - answer_contains: {text: b}", "answer_contains"
        )
    with pytest.raises(ScenarioError, match=r"only an oracle with parameters"):
        scenario("  - tasks_answered#x", "tasks_answered#x")


def test_every_generic_oracle_has_described_params() -> None:
    for name, model in PARAMS.items():
        for field, info in model.model_fields.items():
            assert info.description, f"{name}.{field} has no description"


def test_text_oracles_judge_a_real_run_that_captured_content() -> None:
    from harness.scenarios.run import run_scenario

    guide = (Path(__file__).resolve().parents[2] / "docs" / "scenarios.md").read_text()
    first = re.findall(r"```yaml\n(.*?)```", guide, flags=re.DOTALL)[0]
    text = first.replace("  prompt: Check web1", "  capture_content: true\n  prompt: Check web1")
    text = text.replace(
        "oracles:\n",
        "oracles:\n  - tool_result_never_contains: {text: Connection closed, tool: mem_ssh}\n"
        "  - request_never_contains#canary: {text: web1, agent: B}\n",
    )
    scenario = parse_scenario(text)
    buggy = {v.name: v for v in run_scenario(scenario, policy="buggy").verdicts}
    fixed = {v.name: v for v in run_scenario(scenario, policy="fixed").verdicts}
    leak = buggy["tool_result_never_contains"]
    assert leak.fails
    assert "(sent in request 4 by agent B): 'Connection closed'" in leak.explanation
    assert fixed["tool_result_never_contains"].holds
    assert buggy["request_never_contains#canary"].holds
    assert fixed["request_never_contains#canary"].explanation == (
        "None of 2 API request(s) contained 'web1'."
    )
