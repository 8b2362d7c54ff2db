"""Black-box oracles: judged from what the rig observed, never from the runtime's own events.

A runtime under test that is not the harness's own emits no ``harness.*`` events. These oracles
read only the fake API's journal, the fake MCP servers' records (each request with its
connection, its end, and the client's ``notifications/cancelled``) and the run's answers, so
they judge any runtime, the reference runtime included (where they must agree with the white-box
oracles).

- ``no_teardown_under_calls`` (cascade): a client closed a server connection while requests of
  other calls were still in flight on it, cutting them off (a fault's kill or a scripted crash
  excepted).
- ``sibling_results_kept`` (cascade): a turn's parallel calls finished on the servers, yet the
  next request told the model fewer results than finished: one call's failure lost its
  siblings' work.
- ``api_requests_valid``: the API refused no request (no 400 in the journal).
- ``scheduled_queries_scoped`` (scope leak): every chat query made while a scheduled task that
  declared a scope was running named its context.
- ``tasks_answered``: every task returned an answer (an agent process: exit status 0, no hang).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from harness.oracles._registry import Verdict, oracle
from harness.oracles.record import RunRecord

_CLOSED = -32000  # JSON-RPC "Connection closed": what an in-flight request gets at teardown
_ENDS = ("finished", "errored", "cancelled")


def _t(value: Any) -> str:
    return f"{float(value or 0.0):.1f} s"


def _is_teardown_error(event: dict[str, Any]) -> bool:
    detail = event.get("detail") or {}
    return event.get("kind") == "errored" and detail.get("code") == _CLOSED


@oracle("no_teardown_under_calls", needs=["server_events"])
def no_teardown_under_calls(record: RunRecord) -> Verdict:
    name = "no_teardown_under_calls"
    # Sim: one clock, a teardown's casualties end at its very instant. Live: each server
    # process has its own clock; the casualties end within moments of the stop.
    slack = 1e-6 if record.mode == "sim" else _LIVE_SLACK_S
    findings: list[dict[str, Any]] = []
    teardowns = 0
    for server, events in record.server_events.items():
        faults = _terminating_faults(record, server)
        for key, conn in _connections(events, slack).items():
            stopped = conn["stopped"]
            if stopped is None:
                continue
            teardowns += 1
            by_fault = (record.mode != "sim" and bool(faults)) or any(
                abs(t - stopped) <= slack for t in faults
            )
            if by_fault or conn["crashed"]:
                continue  # the fault plan or the script ended it, not the client
            cut = conn["cut"]
            cut_ids = {c["request_id"] for c in cut}
            failed = [
                other["request_id"]
                for other in conn["failed"]
                if other["request_id"] not in cut_ids
                and any(c["start"] <= other["end"] for c in cut)
            ]
            if len(cut) >= 2 or (cut and failed):
                findings.append(
                    {
                        "server": server,
                        "process": key[0],
                        "connection": key[1],
                        "time": stopped,
                        "cut_off": cut,
                        "after_failure_of": failed,
                    }
                )
    if findings:
        first = findings[0]
        tools = ", ".join(f"{c['tool']} (request {c['request_id']})" for c in first["cut_off"])
        return Verdict(
            name,
            False,
            f"At {_t(first['time'])} the client closed {first['server']} connection "
            f"{first['connection']} while other calls were in flight on it: {tools} were cut "
            f"off without a cancellation.",
            findings,
        )
    return Verdict(
        name,
        True,
        f"No server connection was closed under calls in flight ({teardowns} closed).",
    )


# Fault types that end a connection by themselves (a kill, Toxiproxy's closing toxics).
_TERMINATING = frozenset({"kill", "reset_peer", "limit_data", "timeout", "slow_close"})
_LIVE_SLACK_S = 0.25


def _terminating_faults(record: RunRecord, server: str) -> list[float]:
    """When the fault plan ended connections of ``server`` (their teardowns are the fault's)."""
    return [
        float(e.get("t", 0.0))
        for e in record.fault_events
        if e.get("target") == server and e.get("type") in _TERMINATING
    ]


def _new_connection() -> dict[str, Any]:
    return {"open": {}, "ended": [], "noticed": set(), "stopped": None, "crashed": False}


def _connections(events: list[dict[str, Any]], slack: float) -> dict[tuple[Any, Any], Any]:
    """Per (process, connection): when it stopped, the calls its closing cut off (still open,
    or ended within ``slack`` of the stop without a cancel notice), the calls that failed
    otherwise (timed out and cancelled, errored), and whether the server crashed."""
    conns: dict[tuple[Any, Any], dict[str, Any]] = defaultdict(_new_connection)
    for event in events:
        conn = conns[(event.get("process"), event.get("connection"))]
        kind = event.get("kind")
        rid = event.get("request_id")
        time = float(event.get("time", 0.0))
        if kind == "request" and event.get("method") == "tools/call":
            conn["open"][rid] = {
                "request_id": rid,
                "tool": event.get("tool"),
                "start": time,
                "arguments": event.get("arguments"),
            }
        elif kind == "cancel_notice":
            conn["noticed"].add(rid)
        elif kind == "crashed":
            conn["crashed"] = True
        elif kind in _ENDS and rid in conn["open"]:
            conn["ended"].append((kind, {**conn["open"].pop(rid), "end": time}, event))
        elif kind == "stopped":
            conn["stopped"] = time
    for conn in conns.values():
        stopped = conn["stopped"]
        conn["cut"], conn["failed"] = [], []
        if stopped is not None:
            conn["cut"] = [{**c, "end": stopped} for c in conn["open"].values()]
        # Notices arrive after the cancellation they caused: judged once all are read.
        for kind, call, event in conn["ended"]:
            unnoticed = kind == "cancelled" and call["request_id"] not in conn["noticed"]
            at_stop = stopped is not None and stopped - call["end"] <= slack
            if (unnoticed or _is_teardown_error(event)) and at_stop:
                conn["cut"].append(call)
            elif kind != "finished":
                conn["failed"].append(call)
    return dict(conns)


_CLOCKS = (
    "the servers' records are not on the run's clock (server processes of an older harness), "
    "so calls cannot be matched to the API requests and tasks around them"
)


def _one_clock(record: RunRecord) -> bool:
    """Whether the servers' events share the API journal's clock: always in sim; in live when
    the rig put each process's events on the run's clock."""
    if record.mode == "sim":
        return True
    return all(e.get("clock") == "run" for es in record.server_events.values() for e in es)


# -- the journal -----------------------------------------------------------------------------


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message.get("blocks")
    if blocks is None:
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
    return [b for b in blocks if isinstance(b, dict)]


def _results(row: dict[str, Any]) -> dict[str, bool]:
    """tool_use_id -> is_error for every tool_result block the request sent."""
    out: dict[str, bool] = {}
    for message in (row.get("request") or {}).get("messages") or []:
        if isinstance(message, dict):
            for block in _blocks(message):
                if block.get("type") == "tool_result":
                    out[str(block.get("tool_use_id"))] = bool(block.get("is_error"))
    return out


@oracle("sibling_results_kept", needs=["api_requests", "server_events"])
def sibling_results_kept(record: RunRecord) -> Verdict:
    name = "sibling_results_kept"
    if not _one_clock(record):
        return Verdict.cannot_judge(name, _CLOCKS)
    turns = _parallel_turns(record.journal)
    calls = [
        (float(e.get("time", 0.0)), e)
        for events in record.server_events.values()
        for e in events
        if e.get("kind") in _ENDS and e.get("method") == "tools/call"
    ]
    lost: list[dict[str, Any]] = []
    ambiguous = 0
    for turn in turns:
        if any(
            other is not turn
            and other["agent"] != turn["agent"]
            and other["start"] < turn["end"]
            and turn["start"] < other["end"]
            for other in turns
        ):
            ambiguous += 1  # another agent's calls overlap: counts cannot be told apart
            continue
        finished = [
            e
            for t, e in calls
            if turn["start"] <= t <= turn["end"]
            and e.get("kind") == "finished"
            and t - float(e.get("duration") or 0.0) >= turn["start"]
        ]
        kept = sum(1 for is_error in turn["results"].values() if not is_error)
        if len(finished) > kept:
            lost.append(
                {
                    "journal_seq": turn["seq"],
                    "agent": turn["agent"],
                    "calls": turn["calls"],
                    "finished_on_servers": len(finished),
                    "kept": kept,
                    "time": turn["end"] if turn["seq"] is not None else None,
                }
            )
    if lost:
        first = lost[0]
        if first["time"] is None:
            sent = "no later request gave the model their results (the run ended first)"
        else:
            sent = (
                f"the next request at {_t(first['time'])} gave the model only {first['kept']} "
                f"result(s)"
            )
        return Verdict(
            name,
            False,
            f"Agent {first['agent']}'s turn made {first['calls']} parallel calls; the servers "
            f"finished {first['finished_on_servers']} of them, but {sent}: a failed call lost "
            f"its siblings' work.",
            lost,
        )
    if turns and ambiguous == len(turns):
        return Verdict.cannot_judge(
            name, "every turn with parallel calls overlapped another agent's calls"
        )
    judged = len(turns) - ambiguous
    return Verdict(
        name,
        True,
        f"{judged} turn(s) with parallel calls: every call that finished reached the model.",
    )


def _parallel_turns(journal: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each answered response with two or more tool_use blocks, with the request that sent
    their results (the turn's window on the run's clock)."""
    turns = []
    for index, row in enumerate(journal):
        ids = (row.get("response") or {}).get("tool_use_ids") or []
        if len(ids) < 2:
            continue
        turn: dict[str, Any] = {
            "seq": None,
            "calls": len(ids),
            "agent": row.get("agent"),
            "start": float(row.get("time", 0.0)),
            # No request ever carried the results: the run ended with the turn open, and
            # every call that finished was lost.
            "end": float("inf"),
            "results": {},
        }
        for later in journal[index + 1 :]:
            results = _results(later)
            if all(str(i) in results for i in ids):
                turn["seq"] = later.get("seq")
                turn["end"] = float(later.get("time", 0.0))
                turn["results"] = {str(i): results[str(i)] for i in ids}
                break
        turns.append(turn)
    return turns


@oracle("api_requests_valid", needs=["api_requests"])
def api_requests_valid(record: RunRecord) -> Verdict:
    name = "api_requests_valid"
    refused = [row for row in record.journal if int(row.get("status", 200)) == 400]
    if refused:
        first = refused[0]
        verdict = first.get("verdict")
        message = verdict.get("message") if isinstance(verdict, dict) else verdict
        return Verdict(
            name,
            False,
            f"The API refused {len(refused)} request(s); the first, at "
            f"{_t(first.get('time'))}: {message}",
            [{k: row.get(k) for k in ("seq", "time", "agent", "verdict")} for row in refused],
        )
    return Verdict(name, True, f"All {len(record.journal)} API request(s) passed validation.")


@oracle("tasks_answered", needs=["result"])
def tasks_answered(record: RunRecord) -> Verdict:
    name = "tasks_answered"
    answers = [("main", record.result.get("main"))] if record.result.get("main") else []
    answers += list((record.result.get("tasks") or {}).items())
    bad = [(task, a) for task, a in answers if (a or {}).get("stop") != "end_turn"]
    if bad or record.hung:
        if not bad:
            return Verdict(name, False, "The run hung: " + "; ".join(record.pending[:3]))
        task, answer = bad[0]
        answer = answer or {}
        why = answer.get("error") or answer.get("stop")
        where = f" (raised at {answer['raised_at']})" if answer.get("raised_at") else ""
        # The last line that says something (tracebacks end in box drawing).
        said = [ln.strip(" |+-") for ln in answer.get("stderr_tail") or []]
        said = [ln for ln in said if any(c.isalnum() for c in ln)]
        stderr = f"; stderr: {said[-1]}" if said else ""
        return Verdict(
            name,
            False,
            f"Task {task} did not answer: {why}{where}{stderr}",
            [{"task": t, **(a or {})} for t, a in bad],
        )
    if not answers:
        return Verdict(name, False, "No task produced an answer.")
    return Verdict(name, True, f"All {len(answers)} task(s) answered.")


@oracle("scheduled_queries_scoped", needs=["server_events", "result"])
def scheduled_queries_scoped(record: RunRecord) -> Verdict:
    name = "scheduled_queries_scoped"
    if not _one_clock(record):
        return Verdict.cannot_judge(name, _CLOCKS)
    tasks = record.result.get("tasks") or {}
    windows = [
        (task, float(a.get("started", 0.0)), float(a.get("ended", float("inf"))), a)
        for task, a in tasks.items()
        if a and a.get("declared_scope")
    ]
    queries = [
        e
        for events in record.server_events.values()
        for e in events
        if e.get("kind") == "request" and e.get("tool") == "chat_list_messages"
    ]
    implicit = []
    judged = 0
    for task, start, end, answer in windows:
        mine = [q for q in queries if start <= float(q.get("time", 0.0)) <= end]
        judged += len(mine)
        implicit += [
            {
                "task": task,
                "declared_scope": answer.get("declared_scope"),
                "time": q.get("time"),
                "caller_context": q.get("context_id"),
            }
            for q in mine
            if "context_id" not in (q.get("arguments") or {})
        ]
    if implicit:
        first = implicit[0]
        caller = first["caller_context"]
        fallback = f"the caller's tab {caller}" if caller else "its default tab"
        return Verdict(
            name,
            False,
            f"At {_t(first['time'])}, while scheduled task {first['task']} (declared scope "
            f"{first['declared_scope']}) ran, chat_list_messages was called without a "
            f"context_id: the server fell back to {fallback}.",
            implicit,
        )
    if not windows:
        return Verdict.cannot_judge(name, "no scheduled task declared a scope")
    return Verdict(
        name,
        True,
        f"{judged} chat query(ies) during scheduled tasks with a declared scope, each naming "
        f"its context.",
    )
