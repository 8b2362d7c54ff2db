"""Generic oracles about MCP connections, with parameters, judged from what the rig recorded.

They read the fake API's journal and the fake MCP servers' own records, never the reference
runtime's events, so they judge any runtime under test. Each sentence says what was seen; an
oracle without its evidence (or without the situation it is about) cannot judge.

- ``last_call_succeeds: {tool: X}``: the last result of tool X the model was given is not an
  error (the runtime recovered by the end).
- ``tool_results_within: {seconds: T, tool: X}`` (``tool`` optional): every ``tool_use`` the
  model issued came back as a ``tool_result`` in a request at most T seconds after the request
  whose response issued it (the model's own thinking time counts too); a call never answered
  fails.
- ``session_reestablished: {server: S}`` (``server`` optional): after an HTTP server forgot its
  sessions, the client initialized a new session and a ``tools/call`` finished on the server
  after it.
"""

from __future__ import annotations

from typing import Any

from harness.errors import ConfigError
from harness.oracles._registry import Verdict, oracle
from harness.oracles.record import RunRecord


def _params(record: RunRecord, name: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    params = record.params.get(name) or {}
    if not isinstance(params, dict):
        raise ConfigError(f"oracle {name} takes a mapping of parameters", field="oracles")
    missing = [key for key in required if key not in params]
    if missing:
        raise ConfigError(
            f"oracle {name} needs parameter(s) {', '.join(missing)}",
            field=f"oracles.{name}",
        )
    return params


def _t(value: Any) -> str:
    return f"{float(value or 0.0):.1f} s"


def _blocks(message: Any) -> list[dict[str, Any]]:
    if not isinstance(message, dict):
        return []
    blocks = message.get("blocks")
    if blocks is None:
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
    return [b for b in blocks if isinstance(b, dict)]


def _requests(record: RunRecord) -> list[dict[str, Any]]:
    """Messages API requests that were answered or refused (count_tokens excluded)."""
    return [r for r in record.journal if "count_tokens" not in str(r.get("endpoint", ""))]


def _uses_and_results(
    record: RunRecord,
) -> tuple[dict[str, tuple[str, dict[str, Any]]], dict[str, tuple[bool, dict[str, Any]]]]:
    """Every tool_use the model issued (id -> tool name, the row whose response issued it, else
    the first whose history shows it) and the first request carrying each one's result
    (id -> is_error, that row). A call's name comes from its response too, so a call no later
    request shows (the runtime hung on it) is still known by its tool."""
    names: dict[str, str] = {}
    issued: dict[str, dict[str, Any]] = {}
    results: dict[str, tuple[bool, dict[str, Any]]] = {}
    for row in _requests(record):
        for message in (row.get("request") or {}).get("messages") or []:
            for block in _blocks(message):
                kind = block.get("type")
                if kind == "tool_use":
                    uid = str(block.get("id"))
                    names.setdefault(uid, str(block.get("name")))
                    issued.setdefault(uid, row)
                elif kind == "tool_result":
                    rid = str(block.get("tool_use_id"))
                    results.setdefault(rid, (bool(block.get("is_error")), row))
        response = row.get("response") or {}
        given = response.get("tool_use_names") or []
        for index, uid in enumerate(response.get("tool_use_ids") or []):
            issued.setdefault(str(uid), row)
            if index < len(given):
                names.setdefault(str(uid), str(given[index]))
    uses = {uid: (names.get(uid, "?"), row) for uid, row in issued.items()}
    return uses, results


@oracle("last_call_succeeds", needs=["api_requests"], accepts=["tool"])
def last_call_succeeds(record: RunRecord) -> Verdict:
    name = "last_call_succeeds"
    tool = str(_params(record, name, ("tool",))["tool"])
    uses, results = _uses_and_results(record)
    answered = [
        (row.get("seq") or 0, uid, error, row)
        for uid, (error, row) in results.items()
        if uses.get(uid, ("",))[0] == tool
    ]
    if not answered:
        return Verdict.cannot_judge(name, f"no result of {tool} reached the model")
    _, uid, error, row = max(answered, key=lambda a: a[0])
    if error:
        return Verdict(
            name,
            False,
            f"The last result of {tool} the model was given (in the request at "
            f"{_t(row.get('time'))}) was an error.",
            [{"tool_use_id": uid, "seq": row.get("seq")}],
        )
    return Verdict(
        name,
        True,
        f"The last result of {tool} the model was given (at {_t(row.get('time'))}) was not an "
        f"error ({len(answered)} result(s) of it in all).",
    )


@oracle("tool_results_within", needs=["api_requests"], accepts=["seconds", "tool"])
def tool_results_within(record: RunRecord) -> Verdict:
    name = "tool_results_within"
    params = _params(record, name, ("seconds",))
    limit = float(params["seconds"])
    tool = params.get("tool")
    uses, results = _uses_and_results(record)
    checked = 0
    worst: list[dict[str, Any]] = []
    for uid, (used, issued) in uses.items():
        if tool is not None and used != str(tool):
            continue
        checked += 1
        start = float(issued.get("time") or 0.0)
        if uid not in results:
            worst.append({"tool_use_id": uid, "tool": used, "issued": start, "answered": None})
            continue
        end = float(results[uid][1].get("time") or 0.0)
        if end - start > limit:
            worst.append({"tool_use_id": uid, "tool": used, "issued": start, "answered": end})
    if not checked:
        return Verdict.cannot_judge(
            name, f"the model issued no call{f' of {tool}' if tool else ''}"
        )
    if worst:
        first = worst[0]
        when = (
            "never came back"
            if first["answered"] is None
            else f"came back only at {_t(first['answered'])}"
        )
        what = (
            f"The {first['tool']} call"
            if first["tool"] != "?"
            else f"A call ({first['tool_use_id']}, its tool never shown in a later request)"
        )
        return Verdict(
            name,
            False,
            f"{what} issued at {_t(first['issued'])} {when}, past the "
            f"{limit:g} s allowed ({len(worst)} of {checked} call(s) late or unanswered).",
            worst,
        )
    return Verdict(name, True, f"All {checked} call(s) came back to the model within {limit:g} s.")


def _servers(record: RunRecord, name: str) -> dict[str, list[dict[str, Any]]]:
    server = _params(record, name).get("server")
    if server is None:
        return record.server_events
    if server not in record.server_events:
        return {}
    return {str(server): record.server_events[str(server)]}


@oracle("session_reestablished", needs=["server_events"], accepts=["server"])
def session_reestablished(record: RunRecord) -> Verdict:
    name = "session_reestablished"
    seen = 0
    for server, events in _servers(record, name).items():
        for index, lost in enumerate(events):
            if lost.get("kind") != "sessions_forgotten":
                continue
            if not (lost.get("detail") or {}).get("sessions"):
                continue  # nothing was lost (no HTTP session open, e.g. in memory)
            seen += 1
            later = events[index + 1 :]
            init = next(
                (
                    e
                    for e in later
                    if e.get("kind") == "request" and e.get("method") == "initialize"
                ),
                None,
            )
            if init is None:
                return Verdict(
                    name,
                    False,
                    f"{server} lost its sessions at {_t(lost.get('time'))}, and no client "
                    "initialized a new one afterwards.",
                    [lost],
                )
            after = later[later.index(init) :]
            done = next(
                (
                    e
                    for e in after
                    if e.get("kind") == "finished" and e.get("method") == "tools/call"
                ),
                None,
            )
            if done is None:
                return Verdict(
                    name,
                    False,
                    f"{server} lost its sessions at {_t(lost.get('time'))}; a new session was "
                    f"initialized at {_t(init.get('time'))} but no tool call finished on the "
                    "server after it.",
                    [lost, init],
                )
    if not seen:
        return Verdict.cannot_judge(
            name,
            "no server lost a session in this run (only a streamable HTTP server has sessions "
            "to lose; in sim mode servers are in memory)",
        )
    return Verdict(
        name,
        True,
        f"Each time a server lost its sessions ({seen}), a new session was initialized and a "
        "tool call finished after it.",
    )
