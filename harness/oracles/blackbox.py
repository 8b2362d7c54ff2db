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
- ``one_reconnect_per_failure`` (cascade): after a connection of a server failed (a call on it
  cut off, timed out or crashed, or the plan killed its process), at most one new connection
  replaced it before one of them carried a call: more is reconnects racing.
- ``no_duplicate_server_after_failure`` (cascade): after a failure, the server never had more
  live connections (processes, in live mode) at once than the runtime held before it.
- ``reconnected_after_server_death``: after a server died (crashed, or killed by the plan),
  the runtime opened a new connection to it, or at least did when the model asked for its
  tools again.
- ``api_requests_valid``: the API refused no request (no 400 in the journal). Orphaned tool
  blocks are judged from the journal alone by ``tool_pairing_valid``.
- ``scheduled_queries_scoped`` (scope leak): every chat query made while a scheduled task that
  declared a scope was running named its context.
- ``tasks_answered``: every task returned an answer (an agent process: exit status 0, no hang).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
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
    # Sim: one clock, a teardown's casualties end at its very instant. Live: they end within
    # moments (real ones: scaled to scenario seconds) of the stop.
    slack = 1e-6 if record.mode == "sim" else _LIVE_SLACK_S / record.time_scale
    # Fault records of an older harness's interposers keep their own clock: any teardown of a
    # server the plan ended is then put down to the plan.
    placed = _faults_on_run_clock(record)
    findings: list[dict[str, Any]] = []
    teardowns = 0
    for server, events in record.server_events.items():
        faults = _terminating_faults(record, server)
        for key, conn in _connections(events, slack).items():
            stopped = conn["stopped"]
            if stopped is None:
                continue
            teardowns += 1
            by_fault = (not placed and bool(faults)) or any(
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
            f"{first['connection']} while other calls were in flight on it: {tools} "
            f"{'was' if len(first['cut_off']) == 1 else 'were'} cut off without a cancellation.",
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
        float(e.get("time", 0.0)) + float(e.get("after") or 0.0)
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


# -- connections over time -------------------------------------------------------------------

_FAILED_CALL = ("cancelled", "crashed")


@dataclass(slots=True)
class _Session:
    """One client connection of a server (one process of it, in live mode over stdio)."""

    key: tuple[Any, Any]
    opened: float
    open_order: int
    closed: int | None = None
    failed: tuple[float, int, str] | None = None  # when, its place in the log, how
    first_call: int | None = None


def _deaths(record: RunRecord, server: str) -> list[dict[str, Any]]:
    """When ``server`` died: its scripted crashes and the fault plan's kills (a kill acts
    ``after`` seconds past the frame that triggered it), in time order."""
    out = [
        {
            "time": float(e.get("time", 0.0)),
            "how": f"crashed ({(e.get('detail') or {}).get('how', 'exit')})",
            "process": e.get("process"),
        }
        for e in record.server_events.get(server, [])
        if e.get("kind") == "crashed"
    ]
    out += [
        {
            "time": float(f.get("time", 0.0)) + float(f.get("after") or 0.0),
            "how": f"killed by the fault plan ({f.get('signal', 'SIGKILL')})",
            "process": f.get("process"),
        }
        for f in record.fault_events
        if f.get("target") == server and f.get("type") == "kill" and f.get("kind") == "applied"
    ]
    return sorted(out, key=lambda d: float(d["time"]))


def _faults_on_run_clock(record: RunRecord) -> bool:
    return record.mode == "sim" or all(f.get("clock") == "run" for f in record.fault_events)


def _sessions(record: RunRecord, server: str) -> list[_Session]:
    """The server's connections in the order they opened, each with when it closed, when it
    first failed (a call cut off or timed out, a -32000 error, a crash, a kill) and when it
    first carried a call. Places are positions in the server's log on the run's clock, a
    death just before the events of its instant (it causes them)."""
    events = sorted(record.server_events.get(server, []), key=lambda e: float(e.get("time", 0)))
    deaths = _deaths(record, server)
    timeline: list[tuple[float, int, dict[str, Any] | None, dict[str, Any] | None]] = [
        (float(e.get("time", 0.0)), 1, e, None) for e in events
    ]
    timeline += [(float(d["time"]), 0, None, d) for d in deaths]
    timeline.sort(key=lambda item: (item[0], item[1]))
    sessions: dict[tuple[Any, Any], _Session] = {}
    for order, (time, _, event, death) in enumerate(timeline):
        if death is not None:
            for victim in sessions.values():
                hit = death["process"] is None or victim.key[0] == death["process"]
                if hit and victim.closed is None and victim.failed is None:
                    victim.failed = (time, order, death["how"])
            continue
        assert event is not None
        key = (event.get("process"), event.get("connection"))
        session = sessions.get(key)
        if session is None:
            session = sessions[key] = _Session(key, time, order)
        kind = event.get("kind")
        calls = event.get("method") == "tools/call"
        if kind == "request" and calls and session.first_call is None:
            session.first_call = order
        elif kind == "stopped" and session.closed is None:
            session.closed = order
        broken = (kind in _FAILED_CALL and (calls or kind == "crashed")) or (
            calls and _is_teardown_error(event)
        )
        if broken and session.failed is None:
            how = "a call timed out or was cut off" if kind == "cancelled" else "it broke"
            session.failed = (time, order, "it crashed" if kind == "crashed" else how)
    return sorted(sessions.values(), key=lambda s: s.open_order)


def _live_at(sessions: list[_Session], order: int) -> list[_Session]:
    """The connections open at a place in the log, failed ones left out (being replaced)."""
    return [
        s
        for s in sessions
        if s.open_order <= order
        and (s.closed is None or s.closed > order)
        and (s.failed is None or s.failed[1] > order)
    ]


def _failed_at(session: _Session) -> int:
    """The failure's place in the log (past the end when it never failed)."""
    return session.failed[1] if session.failed is not None else 1 << 62


def _connection_name(server: str, session: _Session) -> str:
    process, connection = session.key
    return (
        f"{server} process {process}"
        if process is not None
        else f"{server} connection {connection}"
    )


def _blind(record: RunRecord) -> str | None:
    """Why connections cannot be put in one order (live records not on the run's clock)."""
    if not _one_clock(record):
        return _CLOCKS
    if not _faults_on_run_clock(record):
        return "the fault plan's records are not on the run's clock, so its kills cannot be placed"
    return None


@oracle("one_reconnect_per_failure", needs=["server_events"])
def one_reconnect_per_failure(record: RunRecord) -> Verdict:
    name = "one_reconnect_per_failure"
    if (why := _blind(record)) is not None:
        return Verdict.cannot_judge(name, why)
    raced: list[dict[str, Any]] = []
    failures = 0
    for server in record.server_events:
        sessions = _sessions(record, server)
        failed = sorted((s for s in sessions if s.failed), key=_failed_at)
        index = 0
        while index < len(failed):
            start = failed[index].failed
            assert start is not None
            # The reconnect window: from the failure until a new connection carried a call.
            new = [s for s in sessions if s.open_order > start[1]]
            end = min((s.first_call for s in new if s.first_call is not None), default=None)
            end_order: float = end if end is not None else math.inf
            replacements = [s for s in new if s.open_order < end_order]
            broken = [s for s in failed if start[1] <= _failed_at(s) < end_order]
            failures += 1
            if len(replacements) > len(broken):
                raced.append(
                    {
                        "server": server,
                        "time": start[0],
                        "failed": [_connection_name(server, s) for s in broken],
                        "how": start[2],
                        "replaced_by": [_connection_name(server, s) for s in replacements],
                    }
                )
            index += len(broken)
    if raced:
        first = raced[0]
        return Verdict(
            name,
            False,
            f"At {_t(first['time'])} {', '.join(first['failed'])} failed ({first['how']}) and "
            f"the runtime opened {len(first['replaced_by'])} new connections in its place "
            f"({', '.join(first['replaced_by'])}) before any carried a call: the reconnects "
            f"raced.",
            raced,
        )
    if not failures:
        return Verdict.cannot_judge(name, "no server connection failed in this run")
    return Verdict(
        name, True, f"{failures} connection failure(s), each replaced by at most one connection."
    )


@oracle("no_duplicate_server_after_failure", needs=["server_events"])
def no_duplicate_server_after_failure(record: RunRecord) -> Verdict:
    name = "no_duplicate_server_after_failure"
    if (why := _blind(record)) is not None:
        return Verdict.cannot_judge(name, why)
    found: list[dict[str, Any]] = []
    judged = 0
    for server in record.server_events:
        sessions = _sessions(record, server)
        first = min((s.failed for s in sessions if s.failed), default=None)
        if first is None:
            continue
        judged += 1

        before = max(
            (len(_live_at(sessions, s.open_order)) for s in sessions if s.open_order < first[1]),
            default=1,
        )
        for session in sessions:
            if session.open_order < first[1]:
                continue
            live = _live_at(sessions, session.open_order)
            if len(live) > max(1, before):
                found.append(
                    {
                        "server": server,
                        "time": session.opened,
                        "failure_at": first[0],
                        "live": [_connection_name(server, s) for s in live],
                        "before_failure": before,
                    }
                )
                break
    if found:
        first_found = found[0]
        return Verdict(
            name,
            False,
            f"At {_t(first_found['time'])}, after a failure at {_t(first_found['failure_at'])}, "
            f"{len(first_found['live'])} connections of {first_found['server']} were live at "
            f"once ({', '.join(first_found['live'])}) where the runtime had held "
            f"{max(1, first_found['before_failure'])} before: the server was started twice.",
            found,
        )
    if not judged:
        return Verdict.cannot_judge(name, "no server connection failed in this run")
    return Verdict(
        name,
        True,
        f"After each failure ({judged} server(s)), no more connections were live at once than "
        f"before it.",
    )


@oracle("reconnected_after_server_death", needs=["server_events", "api_requests"])
def reconnected_after_server_death(record: RunRecord) -> Verdict:
    name = "reconnected_after_server_death"
    if (why := _blind(record)) is not None:
        return Verdict.cannot_judge(name, why)
    asked_at = _tool_uses(record.journal)
    stranded: list[dict[str, Any]] = []
    reconnected: list[str] = []
    unused: list[str] = []
    for server in record.server_events:
        deaths = _deaths(record, server)
        if not deaths:
            continue
        death = deaths[0]
        sessions = _sessions(record, server)
        dead = next((s for s in sessions if s.failed and s.failed[0] == death["time"]), None)
        newer = [s for s in sessions if dead is not None and s.open_order > _failed_at(dead)]
        if newer:
            reconnected.append(server)
            continue
        tools = {str(e["tool"]) for e in record.server_events[server] if e.get("tool") is not None}
        asked = [
            (time, tool_name)
            for time, tool_name in asked_at
            if time >= death["time"]
            and any(tool_name == t or tool_name.endswith(f"_{t}") for t in tools)
        ]
        if asked:
            stranded.append(
                {
                    "server": server,
                    "died_at": death["time"],
                    "how": death["how"],
                    "asked_after": [{"time": t, "tool": n} for t, n in asked],
                }
            )
        else:
            unused.append(server)
    if stranded:
        first = stranded[0]
        return Verdict(
            name,
            False,
            f"{first['server']} died at {_t(first['died_at'])} ({first['how']}); the model then "
            f"asked for {len(first['asked_after'])} call(s) of its tools (the first, "
            f"{first['asked_after'][0]['tool']}, at {_t(first['asked_after'][0]['time'])}), but "
            f"the runtime never opened a new connection to it.",
            stranded,
        )
    if reconnected:
        return Verdict(
            name,
            True,
            f"After each server death the runtime connected anew ({', '.join(reconnected)}).",
        )
    if unused:
        return Verdict.cannot_judge(
            name,
            f"{', '.join(unused)} died, but nothing asked for it afterwards and the runtime "
            f"did not reconnect: whether it would have is not in the record",
        )
    return Verdict.cannot_judge(name, "no server died in this run")


def _tool_uses(journal: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """(when the model asked, tool name) for every tool_use it answered with: names from the
    response (``tool_use_names``) or, failing that, from the request that sent the block
    back."""
    names: dict[str, str] = {}
    for row in journal:
        for message in (row.get("request") or {}).get("messages") or []:
            if isinstance(message, dict):
                for block in _blocks(message):
                    if block.get("type") == "tool_use" and block.get("name"):
                        names[str(block.get("id"))] = str(block["name"])
    out = []
    for row in journal:
        response = row.get("response") or {}
        ids = [str(i) for i in response.get("tool_use_ids") or []]
        given = response.get("tool_use_names") or []
        for index, tool_use_id in enumerate(ids):
            tool = given[index] if index < len(given) else names.get(tool_use_id)
            if tool:
                out.append((float(row.get("time", 0.0)), str(tool)))
    return out


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


# -- what a turn's calls became ---------------------------------------------------------------


def _same_tool(asked: str, served: Any) -> bool:
    """The model's tool name and the server's: equal, or the model's carries a client prefix
    (``mcp__ssh__mem_ssh`` for ``mem_ssh``)."""
    return isinstance(served, str) and (asked == served or asked.endswith("__" + served))


def _answered_turns(journal: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each response that asked for tools, with the request that sent their results back: its
    time and, per tool_use id, the tool's name and whether the result was an error."""
    turns = []
    for index, row in enumerate(journal):
        response = row.get("response") or {}
        ids = [str(i) for i in response.get("tool_use_ids") or []]
        names = response.get("tool_use_names") or []
        if not ids or len(names) != len(ids):
            continue
        for later in journal[index + 1 :]:
            results = _results(later)
            if all(i in results for i in ids):
                turns.append(
                    {
                        "agent": row.get("agent"),
                        "start": float(row.get("time", 0.0)),
                        "end": float(later.get("time", 0.0)),
                        "seq": later.get("seq"),
                        "uses": [(str(n), results[i]) for i, n in zip(ids, names, strict=True)],
                    }
                )
                break
    return turns


def _server_calls(record: RunRecord) -> list[dict[str, Any]]:
    """Every tools/call a fake server saw: server, tool, start, end (None: never), how it
    ended, whether it was an error answer, and when a client's cancel notice came."""
    out: list[dict[str, Any]] = []
    for server, events in record.server_events.items():
        calls: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
        for e in events:
            key = (e.get("process"), e.get("connection"), e.get("request_id"))
            kind = e.get("kind")
            time = float(e.get("time", 0.0))
            if kind == "request" and e.get("method") == "tools/call":
                calls[key] = {
                    "server": server,
                    "tool": e.get("tool"),
                    "request_id": e.get("request_id"),
                    "start": time,
                    "end": None,
                    "how": None,
                    "error": False,
                    "notice": None,
                }
            elif key in calls and kind in _ENDS and calls[key]["end"] is None:
                detail = e.get("detail") or {}
                calls[key].update(end=time, how=kind)
                calls[key]["error"] = kind == "errored" and detail.get("code") != _CLOSED
            elif key in calls and kind == "cancel_notice" and calls[key]["notice"] is None:
                calls[key]["notice"] = time
        out += calls.values()
    return out


def _alone(turn: dict[str, Any], turns: list[dict[str, Any]]) -> bool:
    """No other agent's turn overlaps this one (their calls could not be told apart)."""
    return not any(
        other is not turn
        and other["agent"] != turn["agent"]
        and other["start"] < turn["end"]
        and turn["start"] < other["end"]
        for other in turns
    )


@oracle("abandoned_calls_cancelled", needs=["api_requests", "server_events"])
def abandoned_calls_cancelled(record: RunRecord) -> Verdict:
    """A call the client gave up on (the model got an error result for it while the server
    was still running it) was cancelled on the wire: the server got notifications/cancelled
    before the model got the error."""
    name = "abandoned_calls_cancelled"
    if not _one_clock(record):
        return Verdict.cannot_judge(name, _CLOCKS)
    turns = _answered_turns(record.journal)
    calls = _server_calls(record)
    abandoned = silent = 0
    first: dict[str, Any] | None = None
    for turn in (t for t in turns if _alone(t, turns)):
        for tool in {n for n, is_error in turn["uses"] if is_error}:
            running = [
                c
                for c in calls
                if _same_tool(tool, c["tool"])
                and turn["start"] <= c["start"] <= turn["end"]
                # Still running when the model got its error, or cancelled by the client.
                and (
                    c["end"] is None
                    or c["end"] > turn["end"]
                    or (c["notice"] is not None and c["notice"] <= turn["end"])
                )
            ]
            abandoned += len(running)
            for call in running:
                if call["notice"] is None or call["notice"] > turn["end"]:
                    silent += 1
                    first = first or {**call, "given_up": turn["end"], "agent": turn["agent"]}
    if first is not None:
        still = (
            f"finished at {_t(first['end'])}"
            if first["end"] is not None
            else "had not finished when the run ended"
        )
        return Verdict(
            name,
            False,
            f"{silent} of {abandoned} call(s) the client gave up on got no "
            f"notifications/cancelled: agent {first['agent']}'s model got an error result for "
            f"{first['tool']} (request {first['request_id']} on {first['server']}) at "
            f"{_t(first['given_up'])} while the server still ran it; it {still}.",
            [first],
        )
    if not turns:
        return Verdict.cannot_judge(name, "no request sent tool results back to the model")
    return Verdict(
        name,
        True,
        f"{abandoned} call(s) given up on while the server ran them, each cancelled on the wire "
        "before the model got its error."
        if abandoned
        else "No call was given up on while its server still ran it.",
    )


@oracle("tool_errors_flagged", needs=["api_requests", "server_events"])
def tool_errors_flagged(record: RunRecord) -> Verdict:
    """A call a server answered with an error reaches the model as an error (``is_error``),
    not as a plain result the model reads as success."""
    name = "tool_errors_flagged"
    if not _one_clock(record):
        return Verdict.cannot_judge(name, _CLOCKS)
    turns = _answered_turns(record.journal)
    if not turns:
        return Verdict.cannot_judge(name, "no request sent tool results back to the model")
    calls = _server_calls(record)
    errors = 0
    for turn in (t for t in turns if _alone(t, turns)):
        for tool in {n for n, _ in turn["uses"]}:
            failed = [
                c
                for c in calls
                if _same_tool(tool, c["tool"])
                and c["error"]
                and c["end"] is not None
                and turn["start"] <= c["start"]
                and c["end"] <= turn["end"]
            ]
            flagged = sum(1 for n, is_error in turn["uses"] if n == tool and is_error)
            errors += len(failed)
            if len(failed) > flagged:
                call = failed[0]
                return Verdict(
                    name,
                    False,
                    f"{call['server']} answered {len(failed)} call(s) of {call['tool']} with an "
                    f"error (the first, request {call['request_id']}, at {_t(call['end'])}), but "
                    f"agent {turn['agent']}'s model got {flagged} error result(s) for it at "
                    f"{_t(turn['end'])}: the rest came as plain results.",
                    [{**call, "agent": turn["agent"], "flagged": flagged}],
                )
    return Verdict(
        name,
        True,
        f"Every one of {errors} error answer(s) from the servers reached the model as an error."
        if errors
        else "No server answered a call with an error.",
    )
