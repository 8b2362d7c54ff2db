"""The built-in oracles. Each reads the run record and says, in one sentence, what held or
what went wrong, with the evidence (event sequence numbers, times, journal lines, span ids)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from harness.oracles._registry import Verdict, oracle
from harness.oracles.record import RunRecord

_PAIRING_MARKERS = ("`tool_use`", "`tool_result`", "tool_use_id")


def _t(event: dict[str, Any]) -> str:
    return f"{float(event.get('time', 0.0)):.1f} s"


@oracle("no_reconnect_while_in_flight", needs=["reconnects"])
def no_reconnect_while_in_flight(record: RunRecord) -> Verdict:
    name = "no_reconnect_while_in_flight"
    performed = [e for e in record.runtime("reconnect") if e.get("decision") == "performed"]
    bad = [e for e in performed if int(e.get("in_flight", 0)) > 0]
    if bad:
        first = bad[0]
        return Verdict(
            name,
            False,
            f"At {_t(first)} the {first['server']} connection was torn down and respawned "
            f"(after a {first['reason']}) while {first['in_flight']} other call(s) were still "
            f"in flight on it.",
            [{k: e.get(k) for k in ("seq", "time", "server", "reason", "in_flight")} for e in bad],
        )
    return Verdict(
        name,
        True,
        f"No MCP connection was torn down while calls were in flight "
        f"({len(performed)} reconnect(s), each with nothing in flight).",
    )


@oracle("at_most_one_reconnect_per_failure", needs=["reconnects"])
def at_most_one_reconnect_per_failure(record: RunRecord) -> Verdict:
    name = "at_most_one_reconnect_per_failure"
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for e in record.runtime("reconnect"):
        if e.get("decision") == "performed":
            groups[(str(e["server"]), int(e["generation"]))].append(e)
    raced = {key: events for key, events in groups.items() if len(events) > 1}
    if raced:
        (server, generation), events = next(iter(raced.items()))
        return Verdict(
            name,
            False,
            f"At {_t(events[0])} {server} was reconnected {len(events)} times for the same "
            f"failed connection (generation {generation}): the reconnects raced.",
            [
                {k: e.get(k) for k in ("seq", "time", "server", "reason", "generation")}
                for events in raced.values()
                for e in events
            ],
        )
    return Verdict(name, True, "Every failed connection was replaced at most once.")


# Real seconds a live timer may fire late on a loaded machine.
_LIVE_JITTER_S = 0.05


@oracle("all_calls_resolved", needs=["calls"])
def all_calls_resolved(record: RunRecord) -> Verdict:
    name = "all_calls_resolved"
    open_calls: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    overdue: list[dict[str, Any]] = []
    for e in record.runtime_events:
        key = (str(e.get("server")), str(e.get("tool")))
        if e.get("kind") == "call_started":
            open_calls[key].append(e)
        elif e.get("kind") == "call_ended" and open_calls[key]:
            started = open_calls[key].pop(0)
            limit = started.get("timeout")
            # Live runs wait on real timers: allow their scheduling slack, never a hang. The
            # slack has a part in real time (a loaded machine wakes a timer tens of ms late),
            # which a small time scale turns into many scenario seconds.
            slack = (
                1e-6
                if record.mode == "sim"
                else 0.05 * float(limit or 0) + 1.0 + _LIVE_JITTER_S / record.time_scale
            )
            if limit is not None and float(e.get("duration", 0)) > float(limit) + slack:
                overdue.append({"seq": e.get("seq"), "tool": e.get("tool"), **started})
    unresolved = [e for events in open_calls.values() for e in events]
    if record.hung or unresolved or overdue:
        if unresolved:
            first = unresolved[0]
            sentence = (
                f"{len(unresolved)} tool call(s) never ended; the first, {first['tool']} on "
                f"{first['server']}, started at {_t(first)}."
            )
        elif overdue:
            sentence = f"{len(overdue)} tool call(s) outlived their deadline."
        else:
            sentence = "The run hung: " + "; ".join(record.pending[:3] or ["nothing finished"])
        evidence = [{k: e.get(k) for k in ("seq", "time", "server", "tool")} for e in unresolved]
        return Verdict(name, False, sentence, evidence + overdue)
    ended = len(record.runtime("call_ended"))
    return Verdict(name, True, f"All {ended} tool call(s) ended within their deadlines.")


@oracle("agents_completed", needs=["agents"])
def agents_completed(record: RunRecord) -> Verdict:
    name = "agents_completed"
    started = {e["agent_id"]: e for e in record.runtime("agent_started")}
    finished = {e["agent_id"]: e for e in record.runtime("agent_finished")}
    problems: list[dict[str, Any]] = []
    for agent_id, start in started.items():
        end = finished.get(agent_id)
        if end is None:
            problems.append({"agent": start["agent"], "stop": "never finished"})
        elif end.get("stop") != "end_turn":
            problems.append(
                {
                    "agent": end["agent"],
                    "stop": end.get("stop"),
                    "error_type": end.get("error_type"),
                    "error": end.get("error"),
                    "seq": end.get("seq"),
                    "time": end.get("time"),
                }
            )
    if problems or record.hung:
        if problems:
            p = problems[0]
            cause = f": {p['error']}" if p.get("error") else ""
            sentence = f"Agent {p['agent']} did not complete ({p['stop']}){cause}"
        else:
            sentence = "The run hung before every agent finished."
        return Verdict(name, False, sentence, problems)
    return Verdict(name, True, f"All {len(started)} agent(s) ended their turn.")


@oracle("tool_pairing_valid", needs=["api_requests"])
def tool_pairing_valid(record: RunRecord) -> Verdict:
    name = "tool_pairing_valid"
    bad = []
    for row in record.journal:
        error = row.get("error") or {}
        message = str((error.get("error") or {}).get("message", "")) if error else ""
        if not message and isinstance(row.get("verdict"), dict):
            message = str(row["verdict"].get("message", ""))
        if int(row.get("status", 200)) == 400 and any(m in message for m in _PAIRING_MARKERS):
            bad.append(
                {
                    "journal_seq": row.get("seq"),
                    "time": row.get("time"),
                    "agent": row.get("agent"),
                    "message": message,
                }
            )
    if bad:
        first = bad[0]
        who = f"agent {first['agent']}'s request" if first["agent"] else "a request"
        return Verdict(
            name,
            False,
            f"The API rejected {who} at {first['time']:.1f} s: {first['message']}",
            bad,
        )
    return Verdict(name, True, f"All {len(record.journal)} API request(s) had valid tool pairs.")


@oracle("compaction_never_split_tool_pair", needs=["compactions"])
def compaction_never_split_tool_pair(record: RunRecord) -> Verdict:
    name = "compaction_never_split_tool_pair"
    compacted = [e for e in record.runtime("compaction") if e.get("outcome") == "compacted"]
    bad = [e for e in compacted if e.get("open_tool_calls") or e.get("stop_reason") == "tool_use"]
    if bad:
        first = bad[0]
        open_calls = first.get("open_tool_calls") or []
        # Events list the open calls' ids; a trace's compaction span only counts them.
        if isinstance(open_calls, list):
            count, ids = len(open_calls), f" ({', '.join(map(str, open_calls))})"
        else:
            count, ids = int(open_calls), ""
        ids = ids if count else ""
        return Verdict(
            name,
            False,
            f"At {_t(first)} agent {first['agent']}'s history was compacted while {count} tool "
            f"call(s){ids} were open (stop_reason {first.get('stop_reason')}).",
            [
                {k: e.get(k) for k in ("seq", "time", "agent", "stop_reason", "open_tool_calls")}
                for e in bad
            ],
        )
    return Verdict(name, True, f"{len(compacted)} compaction(s), none while a tool call was open.")


@oracle("scheduled_scope_explicit", needs=["scoped_queries"])
def scheduled_scope_explicit(record: RunRecord) -> Verdict:
    name = "scheduled_scope_explicit"
    automated = [e for e in record.runtime("scoped_query") if e.get("automated")]
    implicit = [e for e in automated if not e.get("explicit")]
    refused = record.runtime("scope_refused")
    if implicit:
        first = implicit[0]
        return Verdict(
            name,
            False,
            f"At {_t(first)} scheduled agent {first['agent']} ran {first['tool']} without a "
            f"scope, so it read its tab's default ({first['context_id']}).",
            [
                {k: e.get(k) for k in ("seq", "time", "agent", "tool", "context_id", "scope")}
                for e in implicit
            ],
        )
    if not automated and not refused:
        # Nothing scheduled reached the chat (a schedule that never fired): no evidence.
        return Verdict.cannot_judge(
            name, "no scheduled task queried the chat in this run (none fired, or none asked)"
        )
    extra = f"; {len(refused)} undeclared query(ies) refused" if refused else ""
    return Verdict(
        name,
        True,
        f"{len(automated)} scheduled chat query(ies), each with an explicit scope{extra}.",
    )


@oracle("review_saw_all_contexts", needs=["result"], accepts=["task", "contexts"])
def review_saw_all_contexts(record: RunRecord) -> Verdict:
    name = "review_saw_all_contexts"
    params = record.params.get(name, {})
    task = str(params.get("task", ""))
    contexts = [str(c) for c in params.get("contexts", [])]
    result = (record.result.get("tasks") or {}).get(task)
    if result is None:
        return Verdict(name, False, f"The scheduled task {task!r} never produced an answer.")
    text = str(result.get("text", ""))
    missing = [c for c in contexts if c not in text]
    if missing:
        return Verdict(
            name,
            False,
            f"Task {task}'s review never saw the {', '.join(missing)} context(s): it read only "
            f"part of the day.",
            [{"task": task, "missing": missing, "answer": text[:300]}],
        )
    return Verdict(name, True, f"Task {task}'s review covered {', '.join(contexts)}.")


@oracle("no_leaked_processes", needs=["connections"])
def no_leaked_processes(record: RunRecord) -> Verdict:
    name = "no_leaked_processes"
    orphans = [e for e in record.runtime("connections_at_close") if int(e.get("orphans", 0)) > 0]
    if record.leaked or orphans:
        if orphans:
            first = orphans[0]
            # Why each orphan was opened (a reconnect after a timeout, a lazy first call...).
            generations = set(first.get("generations") or [])
            reasons = sorted(
                {
                    str(e.get("reason"))
                    for e in record.runtime("connecting")
                    if e.get("server") == first["server"] and e.get("generation") in generations
                }
            )
            opened = f" (opened for: {', '.join(reasons)})" if reasons else ""
            sentence = (
                f"{first['orphans']} {first['server']} connection(s){opened} were still open "
                "with no owner when the runtime stopped: the server was connected again while "
                "a connection to it was live."
            )
        else:
            sentence = f"{len(record.leaked)} process(es) or connection(s) outlived the run."
        return Verdict(name, False, sentence, orphans + [{"leaked": x} for x in record.leaked])
    return Verdict(name, True, "Nothing the run started outlived it, and nothing was orphaned.")


@oracle("no_secrets_in_telemetry", needs=["secrets", "spans"])
def no_secrets_in_telemetry(record: RunRecord) -> Verdict:
    name = "no_secrets_in_telemetry"
    secrets = [s for s in record.secrets if len(s) >= 8]
    if not secrets:
        return Verdict(name, True, "No secrets were handed out in this run.")
    found: list[dict[str, Any]] = []
    for span in record.spans:
        text = json.dumps([span["attributes"], span["events"], span["status_message"]])
        if any(secret in text for secret in secrets):
            found.append({"span_id": span["span_id"], "name": span["name"]})
    sources = {
        "runtime events": record.runtime_events,
        "server events": [e for events in record.server_events.values() for e in events],
        "API journal": record.journal,
    }
    for source, rows in sources.items():
        text = json.dumps(rows, default=str)
        if any(secret in text for secret in secrets):
            found.append({"source": source})
    if found:
        where = found[0].get("name") or found[0].get("source")
        return Verdict(name, False, f"A vault secret appeared in telemetry ({where}).", found)
    return Verdict(
        name, True, f"None of {len(secrets)} secret value(s) appeared in spans, events or logs."
    )


_MESSAGES_ENDPOINT = "/v1/messages"
_THINKING_TYPES = ("thinking", "redacted_thinking")
# The API's texts for thinking blocks missing, altered or out of place in a request.
_THINKING_MARKERS = (
    "Expected `thinking` or `redacted_thinking`",
    "blocks in the latest assistant message cannot be modified",
    "Invalid `signature` in `thinking` block",
    "cannot contain `thinking`",
)
_TOO_LONG = "prompt is too long"


def _api_message(row: dict[str, Any]) -> str:
    """The error text the API answered a journal row with ('' when it answered)."""
    error = row.get("error") or {}
    if isinstance(error, dict):
        nested = error.get("error")
        message = nested.get("message") if isinstance(nested, dict) else error.get("message")
        if isinstance(message, str) and message:
            return message
    verdict = row.get("verdict")
    return str(verdict.get("message") or "") if isinstance(verdict, dict) else ""


def _messages_rows(record: RunRecord) -> list[dict[str, Any]]:
    # Rows rebuilt from a trace name no endpoint: they are Messages requests.
    return [
        r for r in record.journal if r.get("endpoint", _MESSAGES_ENDPOINT) == _MESSAGES_ENDPOINT
    ]


def _who(row: dict[str, Any]) -> str:
    return f"agent {row['agent']}'s request" if row.get("agent") else "a request"


def _leading_thinking(blocks: list[dict[str, Any]]) -> int:
    count = 0
    for block in blocks:
        if block.get("type") not in _THINKING_TYPES:
            break
        count += 1
    return count


@oracle("thinking_blocks_preserved", needs=["api_requests"])
def thinking_blocks_preserved(record: RunRecord) -> Verdict:
    """With thinking on, the assistant turn a request's tool results answer goes back with the
    thinking blocks its response began with, and the API refuses no request for them."""
    name = "thinking_blocks_preserved"
    rows = _messages_rows(record)
    rejected = [
        r
        for r in rows
        if int(r.get("status", 200)) == 400 and any(m in _api_message(r) for m in _THINKING_MARKERS)
    ]
    # tool_use id -> (the response that asked for it, how many thinking blocks it began with)
    asked: dict[str, tuple[dict[str, Any], int]] = {}
    dropped: list[dict[str, Any]] = []
    checked = 0
    for row in rows:
        request = row.get("request") or {}
        messages = request.get("messages") or []
        answered = {
            str(b.get("tool_use_id"))
            for b in (messages[-1].get("blocks") or [] if messages else [])
            if b.get("type") == "tool_result"
        }
        for message in messages:
            blocks = message.get("blocks") or []
            ids = [str(b.get("id")) for b in blocks if b.get("type") == "tool_use"]
            origin = next((asked[i] for i in ids if i in answered and i in asked), None)
            if message.get("role") != "assistant" or origin is None:
                continue
            checked += 1
            response, expected = origin
            sent = _leading_thinking(blocks)
            if sent < expected:
                dropped.append(
                    {
                        "journal_seq": row.get("seq"),
                        "time": row.get("time"),
                        "agent": row.get("agent"),
                        "response_id": response.get("id"),
                        "thinking_blocks_returned": expected,
                        "thinking_blocks_sent_back": sent,
                        "status": row.get("status"),
                        "message": _api_message(row),
                    }
                )
        response = row.get("response") or {}
        thinking = _leading_thinking([{"type": t} for t in response.get("block_types") or []])
        if request.get("thinking") and thinking:
            for tool_use_id in response.get("tool_use_ids") or []:
                asked[str(tool_use_id)] = (response, thinking)
    if dropped:
        first = dropped[0]
        answer = (
            f"; the API answered {first['status']}: {first['message']}"
            if first["message"]
            else f"; the API answered {first['status']}"
        )
        return Verdict(
            name,
            False,
            f"At {float(first['time'] or 0):.1f} s {_who(first)} sent back the tool-loop turn "
            f"{first['response_id']} with {first['thinking_blocks_sent_back']} of the "
            f"{first['thinking_blocks_returned']} thinking block(s) its response began "
            f"with{answer}",
            dropped,
        )
    if rejected:
        first = rejected[0]
        return Verdict(
            name,
            False,
            f"The API rejected {_who(first)} at {float(first.get('time') or 0):.1f} s for its "
            f"thinking blocks: {_api_message(first)}",
            [
                {k: r.get(k) for k in ("seq", "time", "agent")} | {"message": _api_message(r)}
                for r in rejected
            ],
        )
    if not any((r.get("request") or {}).get("thinking") for r in rows):
        return Verdict.cannot_judge(name, "no request in the journal enabled thinking")
    if not checked:
        return Verdict.cannot_judge(
            name, "no tool loop ran with thinking on: no turn with thinking was sent back"
        )
    return Verdict(
        name,
        True,
        f"{checked} tool-loop turn(s) went back with every thinking block their response began "
        f"with, and no request was refused for its thinking blocks.",
    )


@oracle("context_within_window", needs=["api_requests"])
def context_within_window(record: RunRecord) -> Verdict:
    """No request outgrew the model's context window (the API's ``prompt is too long``)."""
    name = "context_within_window"
    rows = _messages_rows(record)
    if not rows:
        return Verdict.cannot_judge(name, "the journal holds no Messages API request")
    over = [r for r in rows if int(r.get("status", 200)) == 400 and _TOO_LONG in _api_message(r)]
    if over:
        first = over[0]
        count = (first.get("request") or {}).get("message_count")
        size = f" ({count} messages)" if count else ""
        return Verdict(
            name,
            False,
            f"At {float(first.get('time') or 0):.1f} s {_who(first)}{size} outgrew the model's "
            f"context window: the API answered 400 {_api_message(first)}",
            [
                {k: r.get(k) for k in ("seq", "time", "agent")} | {"message": _api_message(r)}
                for r in over
            ],
        )
    sizes = [
        int(usage.get("input_tokens", 0))
        + int(usage.get("cache_read_input_tokens") or 0)
        + int(usage.get("cache_creation_input_tokens") or 0)
        for r in rows
        if isinstance(usage := (r.get("response") or {}).get("usage"), dict)
    ]
    largest = f" (the largest carried {max(sizes)} input tokens)" if sizes else ""
    return Verdict(
        name, True, f"All {len(rows)} API request(s) fit the model's context window{largest}."
    )
