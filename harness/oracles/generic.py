"""Generic oracles: invariants any scenario can state with parameters, judged from the rig's
records (the API journal, the fake MCP servers' records, the run's answers), so they judge the
reference runtime and a runtime under test alike.

Each sentence says what was seen (counts, which request, call or time), never a founding bug's
story; an oracle without its evidence answers "cannot judge". List one with its parameters,
more than once under labels::

    oracles:
      - answer_contains: {text: "db1 is up", agent: main}
      - answer_never_contains#secret: {regex: "hunter[0-9]"}
      - tools_offered: {tools: [mem_ssh], after: 150}
      - at_most_sessions: {n: 1, server: ssh, count: processes}
      - ends_within: {seconds: 300}

Texts of API requests and tool results are in the journal only when the run captured content
(``runtime.capture_content: true``); without it those oracles cannot judge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness._yaml import RegexText
from harness.oracles._registry import Verdict, parameterised
from harness.oracles.record import RunRecord

__all__ = [
    "AnswerText",
    "CallsParams",
    "EndsWithin",
    "NothingWritten",
    "RequestText",
    "Respawned",
    "ServerParams",
    "Sessions",
    "ToolResultText",
    "ToolsOffered",
]

_ENDS = ("finished", "errored", "cancelled")
_CLOSED = -32000  # JSON-RPC "Connection closed": what an in-flight request gets at teardown
_SNIPPET = 60


def _t(value: Any) -> str:
    return f"{float(value or 0.0):.1f} s"


def _short(text: str, limit: int = _SNIPPET) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Text(_Params):
    text: str | None = Field(default=None, min_length=1, description="A substring to look for.")
    regex: RegexText | None = Field(
        default=None, min_length=1, description="A regular expression to look for (re.search)."
    )
    ignore_case: bool = Field(default=False, description="Match without regard to case.")

    @model_validator(mode="after")
    def _one_pattern(self) -> _Text:
        if (self.text is None) == (self.regex is None):
            raise ValueError("give text or regex (one of them)")
        return self

    @property
    def shown(self) -> str:
        return repr(self.text) if self.text is not None else f"/{self.regex}/"

    def find(self, haystack: str) -> str | None:
        """The matched text with some context around it, or ``None``."""
        flags = re.IGNORECASE if self.ignore_case else 0
        pattern = re.escape(self.text) if self.text is not None else str(self.regex)
        match = re.search(pattern, haystack, flags)
        if match is None:
            return None
        start = max(0, match.start() - 20)
        return _short(haystack[start : match.end() + 20])


# -- answers ---------------------------------------------------------------------------------


class AnswerText(_Text):
    """Which answers, and the text to find in them."""

    agent: str | None = Field(
        default=None,
        description="Only this agent's answers (the main agent, a subagent or a task's agent).",
    )
    task: str | None = Field(default=None, description="Only this scheduled task's answer.")


def _answers(record: RunRecord, params: AnswerText) -> list[tuple[str, dict[str, Any]]]:
    """(who, answer) for the answers ``params`` select: by default the main agent's and every
    scheduled task's; with ``agent``, every answer of that name, subagents included."""
    tops: list[tuple[str, dict[str, Any]]] = []
    main = record.result.get("main")
    if isinstance(main, dict):
        tops.append((f"agent {main.get('name', 'main')}", main))
    for task, answer in (record.result.get("tasks") or {}).items():
        if isinstance(answer, dict):
            tops.append((f"task {task}", answer))
    if params.task is not None:
        tops = [(who, a) for who, a in tops if who == f"task {params.task}"]
    if params.agent is None:
        return tops
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(who: str, answer: dict[str, Any]) -> None:
        if answer.get("name") == params.agent:
            found.append((who if who.startswith("task") else f"agent {params.agent}", answer))
        for child in answer.get("children") or []:
            if isinstance(child, dict):
                walk(f"agent {child.get('name')}", child)

    for who, answer in tops:
        walk(who, answer)
    return found


def _selection(params: AnswerText) -> str:
    if params.task is not None:
        return f"task {params.task}" + (f" (agent {params.agent})" if params.agent else "")
    return f"agent {params.agent}" if params.agent is not None else "the run"


@parameterised("answer_contains", params=AnswerText, needs=["result"])
def answer_contains(record: RunRecord, params: AnswerText, name: str) -> Verdict:
    answers = _answers(record, params)
    if not answers:
        return Verdict(
            name, False, f"{_selection(params)} gave no answer to look for {params.shown} in."
        )
    lacking = [(who, a) for who, a in answers if params.find(str(a.get("text") or "")) is None]
    if lacking:
        who, answer = lacking[0]
        text = str(answer.get("text") or "")
        said = f"answered {_short(text)}" if text else f"gave no text (stop: {answer.get('stop')})"
        return Verdict(
            name,
            False,
            f"{len(lacking)} of {len(answers)} answer(s) lack {params.shown}: {who} {said}.",
            [
                {"who": w, "stop": a.get("stop"), "text": str(a.get("text") or "")[:300]}
                for w, a in lacking
            ],
        )
    who, answer = answers[0]
    seen = params.find(str(answer.get("text") or ""))
    return Verdict(
        name,
        True,
        f"{len(answers)} answer(s) contain {params.shown}; {who}'s: {seen}.",
    )


@parameterised("answer_never_contains", params=AnswerText, needs=["result"])
def answer_never_contains(record: RunRecord, params: AnswerText, name: str) -> Verdict:
    answers = _answers(record, params)
    if not answers:
        return Verdict.cannot_judge(name, f"{_selection(params)} gave no answer to read")
    hits = [(who, seen) for who, a in answers if (seen := params.find(str(a.get("text") or "")))]
    if hits:
        who, seen = hits[0]
        return Verdict(
            name,
            False,
            f"{len(hits)} of {len(answers)} answer(s) contain {params.shown}; {who}'s: {seen}.",
            [{"who": w, "match": s} for w, s in hits],
        )
    return Verdict(name, True, f"None of {len(answers)} answer(s) contains {params.shown}.")


# -- the journal's captured content ----------------------------------------------------------

_NOT_CAPTURED = (
    "the API journal holds no message text (set runtime.capture_content: true to record it)"
)


def _messages(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The request's messages as sent, or ``None`` when the journal kept only a summary."""
    messages = (row.get("request") or {}).get("messages")
    if not isinstance(messages, list):
        return None
    out = [m for m in messages if isinstance(m, dict)]
    if any("blocks" in m and "content" not in m for m in out):
        return None
    return out


def _content(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    parts = [str(b.get("text", "")) for b in content or [] if isinstance(b, dict)]
    return "\n".join(parts)


def _request_text(row: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    system = (row.get("request") or {}).get("system")
    parts = [system] if isinstance(system, str) else []
    if isinstance(system, list):
        parts += [str(b.get("text", "")) for b in system if isinstance(b, dict)]
    for message in messages:
        for block in _content(message):
            kind = block.get("type")
            if kind == "text":
                parts.append(str(block.get("text", "")))
            elif kind == "tool_result":
                parts.append(_result_text(block))
            elif kind == "tool_use":
                parts.append(json.dumps(block.get("input"), ensure_ascii=False))
            elif kind == "thinking":
                parts.append(str(block.get("thinking", "")))
    return "\n".join(parts)


def _api_rows(record: RunRecord, agent: str | None) -> list[dict[str, Any]]:
    return [
        row
        for row in record.journal
        if str(row.get("endpoint", "/v1/messages")) == "/v1/messages"
        and (agent is None or row.get("agent") == agent)
    ]


class RequestText(_Text):
    """Which API requests, and the text to find in them (system prompt, text, tool results,
    tool inputs, thinking)."""

    agent: str | None = Field(default=None, description="Only requests routed to this agent.")


@dataclass(frozen=True, slots=True)
class _Searched:
    """One text an oracle searched: where it was, what it read, what matched (or ``None``)."""

    where: str
    text: str
    seen: str | None
    evidence: dict[str, Any]


def _presence(
    name: str, params: _Text, searched: list[_Searched], what: str, *, never: bool
) -> Verdict:
    """The verdict of "some ``what`` contains it" (``never``: "none does")."""
    hits = [s for s in searched if s.seen]
    counted = f"{len(hits)} of {len(searched)} {what} contained {params.shown}"
    if hits:
        first = hits[0]
        sentence = f"{counted}; the first, {first.where}: {first.seen}."
        evidence = [{**h.evidence, "match": h.seen} for h in hits] if never else []
        return Verdict(name, not never, sentence, evidence)
    sentence = f"None of {len(searched)} {what} contained {params.shown}"
    if never:
        return Verdict(name, True, sentence + ".")
    first = searched[0]
    return Verdict(name, False, f"{sentence}; the first, {first.where}, read {_short(first.text)}.")


def _requests_searched(
    record: RunRecord, params: RequestText, name: str
) -> list[_Searched] | Verdict:
    rows = _api_rows(record, params.agent)
    if not rows:
        who = f" of agent {params.agent}" if params.agent else ""
        return Verdict.cannot_judge(name, f"the journal holds no API request{who}")
    found = []
    for row in rows:
        messages = _messages(row)
        if messages is None:
            return Verdict.cannot_judge(name, _NOT_CAPTURED)
        text = _request_text(row, messages)
        where = f"request {row.get('seq')} (agent {row.get('agent')}, at {_t(row.get('time'))})"
        evidence = {k: row.get(k) for k in ("seq", "agent", "time")}
        found.append(_Searched(where, text, params.find(text), evidence))
    return found


class ToolResultText(_Text):
    """Which tool results (as the runtime sent them to the API), and the text to find."""

    tool: str | None = Field(default=None, description="Only results of this tool.")
    agent: str | None = Field(default=None, description="Only results sent by this agent.")


def _tool_results(
    record: RunRecord, params: ToolResultText, name: str
) -> list[_Searched] | Verdict:
    """Each tool result the runtime sent (its first sending, by tool_use id)."""
    seen: dict[str, _Searched] = {}
    for row in _api_rows(record, params.agent):
        messages = _messages(row)
        if messages is None:
            return Verdict.cannot_judge(name, _NOT_CAPTURED)
        tools = {
            str(b.get("id")): str(b.get("name"))
            for m in messages
            for b in _content(m)
            if b.get("type") == "tool_use"
        }
        for message in messages:
            for block in _content(message):
                use_id = str(block.get("tool_use_id"))
                tool = tools.get(use_id, "?")
                if block.get("type") != "tool_result" or use_id in seen:
                    continue
                if params.tool is not None and tool != params.tool:
                    continue
                error = ", an error" if block.get("is_error") else ""
                where = (
                    f"{tool} result {use_id}{error} (sent in request {row.get('seq')} by agent "
                    f"{row.get('agent')})"
                )
                text = _result_text(block)
                evidence = {
                    "tool_use_id": use_id,
                    "tool": tool,
                    "is_error": bool(block.get("is_error")),
                    "seq": row.get("seq"),
                    "agent": row.get("agent"),
                }
                seen[use_id] = _Searched(where, text, params.find(text), evidence)
    if not seen:
        which = f" of {params.tool}" if params.tool else ""
        return Verdict.cannot_judge(name, f"no tool result{which} reached the API")
    return list(seen.values())


T = TypeVar("T", bound=_Text)


def _register_text_oracles(
    name: str,
    params: type[T],
    search: Callable[[RunRecord, T, str], list[_Searched] | Verdict],
    what: str,
) -> None:
    """``<name>_contains`` (some ``what`` contains the text) and ``<name>_never_contains``."""
    for never, suffix in ((False, "_contains"), (True, "_never_contains")):

        def judge(record: RunRecord, given: T, label: str, never: bool = never) -> Verdict:
            searched = search(record, given, label)
            if isinstance(searched, Verdict):
                return searched
            return _presence(label, given, searched, what, never=never)

        parameterised(name + suffix, params=params, needs=["api_requests"])(judge)


_register_text_oracles("request", RequestText, _requests_searched, "API request(s)")
_register_text_oracles("tool_result", ToolResultText, _tool_results, "tool result(s)")


class ToolsOffered(_Params):
    """Tools every API request must still offer the model."""

    tools: list[str] = Field(min_length=1, description="Tool names every request must offer.")
    after: float = Field(
        default=0.0, ge=0, description="Only requests at or after this time (scenario seconds)."
    )
    agent: str | None = Field(default=None, description="Only requests routed to this agent.")
    once_offered: bool = Field(
        default=False,
        description=(
            "Judge each tool only from the first request that offered it, and only requests of "
            "agents it was offered to: a tool the catalogue gains later (a lazily opened "
            "session) is not missing before, but must never leave it. A tool never offered: "
            "cannot judge."
        ),
    )


def _offered(row: dict[str, Any]) -> list[str]:
    tools = (row.get("request") or {}).get("tools")
    return [str(t) for t in tools] if isinstance(tools, list) else []


@parameterised("tools_offered", params=ToolsOffered, needs=["api_requests"])
def tools_offered(record: RunRecord, params: ToolsOffered, name: str) -> Verdict:
    rows = [
        row
        for row in _api_rows(record, params.agent)
        if float(row.get("time", 0.0)) >= params.after and int(row.get("status", 200)) != 400
    ]
    wanted = ", ".join(params.tools)
    if not rows:
        who = f" of agent {params.agent}" if params.agent else ""
        return Verdict.cannot_judge(
            name, f"no valid API request{who} at or after {_t(params.after)}"
        )
    # The journal names a request's tools when it offered some: a request without the key
    # offered none, unless no request of the run has it (a journal of an older harness).
    if not any("tools" in (row.get("request") or {}) for row in record.journal):
        return Verdict.cannot_judge(
            name, "the API journal names no tools offered (an older harness, or no tools at all)"
        )
    # From which request on, and for which agents, each tool is due (every row, every agent
    # unless once_offered).
    since = dict.fromkeys(params.tools, 0)
    agents: dict[str, set[Any] | None] = dict.fromkeys(params.tools)
    if params.once_offered:
        for tool in params.tools:
            first = next((i for i, row in enumerate(rows) if tool in _offered(row)), None)
            if first is None:
                return Verdict.cannot_judge(
                    name, f"no request at or after {_t(params.after)} offered {tool}"
                )
            since[tool] = first
            agents[tool] = {row.get("agent") for row in rows if tool in _offered(row)}
    short: list[dict[str, Any]] = []
    checked = 0
    for index, row in enumerate(rows):
        due = [
            t
            for t in params.tools
            if index >= since[t] and ((only := agents[t]) is None or row.get("agent") in only)
        ]
        if not due:
            continue
        checked += 1
        offered = _offered(row)
        lacking = [t for t in due if t not in offered]
        if lacking:
            short.append(
                {k: row.get(k) for k in ("seq", "time", "agent")}
                | {"lacking": lacking, "offered": offered}
            )
    which = (
        f"API request(s) at or after {_t(params.after)}"
        if not params.once_offered
        else "API request(s) from each tool's first offering on, of the agents offered it"
    )
    if short:
        first_short = short[0]
        offered_text = ", ".join(first_short["offered"]) or "none"
        return Verdict(
            name,
            False,
            f"{len(short)} of {checked} {which} lacked {', '.join(first_short['lacking'])}; "
            f"the first, request {first_short['seq']} (agent {first_short['agent']}, at "
            f"{_t(first_short['time'])}), offered: {offered_text}.",
            short,
        )
    return Verdict(name, True, f"All {checked} {which} offered {wanted}.")


# -- the servers' records --------------------------------------------------------------------


class ServerParams(_Params):
    """Which fake MCP servers."""

    server: str | None = Field(default=None, description="Only this server (default: all).")


def _servers(
    record: RunRecord, server: str | None, name: str
) -> tuple[dict[str, list[dict[str, Any]]], Verdict | None]:
    if server is not None:
        if server not in record.server_events:
            return {}, Verdict.cannot_judge(name, f"no record of server {server}")
        return {server: record.server_events[server]}, None
    if not record.server_events:
        return {}, Verdict.cannot_judge(name, "the run has no fake MCP server records")
    return record.server_events, None


def _instances(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each server process or connection the server's record saw start, in order, with when
    it started and stopped (``None``: never)."""
    out: dict[tuple[Any, Any], dict[str, Any]] = {}
    for e in events:
        key = (e.get("process"), e.get("connection"))
        if e.get("kind") == "started" and key not in out:
            out[key] = {
                "process": key[0],
                "connection": key[1],
                "started": float(e.get("time", 0.0)),
                "stopped": None,
            }
        elif e.get("kind") == "stopped" and key in out:
            out[key]["stopped"] = float(e.get("time", 0.0))
    return list(out.values())


def _label(instance: dict[str, Any]) -> str:
    if instance["process"] is not None:
        return f"process {instance['process']} connection {instance['connection']}"
    return f"connection {instance['connection']}"


class Respawned(ServerParams):
    """Which fake MCP servers, and whether a crash counts."""

    crashed: bool = Field(
        default=False,
        description=(
            "Also fail when a server crashed (a scripted crash or kill), even if nothing "
            "started it again."
        ),
    )


@parameterised("no_server_respawned", params=Respawned, needs=["server_events"])
def no_server_respawned(record: RunRecord, params: Respawned, name: str) -> Verdict:
    servers, unjudged = _servers(record, params.server, name)
    if unjudged is not None:
        return unjudged
    respawned: list[dict[str, Any]] = []
    for server, events in servers.items():
        crash = next((e for e in events if e.get("kind") == "crashed"), None)
        if params.crashed and crash is not None:
            during = " ".join(
                str(part) for part in (crash.get("method"), crash.get("tool")) if part
            )
            return Verdict(
                name,
                False,
                f"{server} crashed at {_t(crash.get('time'))}"
                + (f" (during {during}, request {crash.get('request_id')})" if during else "")
                + ".",
                [crash],
            )
        instances = _instances(events)
        if len(instances) > 1:
            first, again = instances[0], instances[1]
            respawned.append(
                {
                    "server": server,
                    "starts": len(instances),
                    "first": first,
                    "second": again,
                }
            )
    if respawned:
        r = respawned[0]
        first = r["first"]
        ended = (
            f"the first stopped at {_t(first['stopped'])}"
            if first["stopped"] is not None
            else "the first never stopped"
        )
        return Verdict(
            name,
            False,
            f"{r['server']} was started {r['starts']} times: {_label(r['second'])} at "
            f"{_t(r['second']['started'])}; {ended}.",
            respawned,
        )
    crashes = " and never crashed" if params.crashed else ""
    return Verdict(
        name,
        True,
        f"Each of {len(servers)} server(s) was started once and never again{crashes}.",
    )


class Sessions(ServerParams):
    """How many sessions or processes a server may have had."""

    n: int = Field(ge=1, description="The most a server may have had.")
    count: Literal["sessions", "processes"] = Field(
        default="sessions",
        description="Count client sessions (connections) or server processes (live stdio).",
    )
    at_once: bool = Field(
        default=False, description="Count those open at the same time, not all the run had."
    )


def _peak(events: list[dict[str, Any]], key: str) -> tuple[int, float | None]:
    """Most sessions (``key="connection"``) or processes (``"process"``) open at once, in the
    order the record saw them start and stop, and when that was first reached."""
    open_now: dict[Any, int] = {}
    best, when = 0, None
    for e in events:
        kind = e.get("kind")
        ident = e.get(key) if key == "process" else (e.get("process"), e.get("connection"))
        if kind == "started":
            open_now[ident] = open_now.get(ident, 0) + 1
        elif kind == "stopped" and open_now.get(ident):
            open_now[ident] -= 1
            if not open_now[ident]:
                del open_now[ident]
        if len(open_now) > best:
            best, when = len(open_now), float(e.get("time", 0.0))
    return best, when


@parameterised("at_most_sessions", params=Sessions, needs=["server_events"])
def at_most_sessions(record: RunRecord, params: Sessions, name: str) -> Verdict:
    servers, unjudged = _servers(record, params.server, name)
    if unjudged is not None:
        return unjudged
    what = params.count
    unit = "session(s)" if what == "sessions" else "process(es)"
    counted: dict[str, tuple[int, float | None]] = {}
    for server, events in servers.items():
        instances = _instances(events)
        if what == "processes" and any(i["process"] is None for i in instances):
            return Verdict.cannot_judge(
                name, f"{server} ran in process (no server processes to count)"
            )
        if params.at_once:
            counted[server] = _peak(events, "process" if what == "processes" else "connection")
            continue
        if what == "processes":
            firsts: dict[Any, dict[str, Any]] = {}
            for i in instances:
                firsts.setdefault(i["process"], i)
            instances = list(firsts.values())
        counted[server] = (len(instances), instances[-1]["started"] if instances else None)
    over = {s: c for s, c in counted.items() if c[0] > params.n}
    how = " at once" if params.at_once else ""
    if over:
        server, (count, when) = next(iter(over.items()))
        at = f" (reached at {_t(when)})" if when is not None else ""
        return Verdict(
            name,
            False,
            f"{server} had {count} {unit}{how}{at}; at most {params.n} allowed.",
            [{"server": s, what: c, "time": t} for s, (c, t) in over.items()],
        )
    shown = ", ".join(f"{s}: {c}" for s, (c, _) in counted.items())
    return Verdict(name, True, f"At most {params.n} {unit}{how} per server ({shown}).")


class CallsParams(ServerParams):
    """Which tool calls."""

    tool: str | None = Field(default=None, description="Only calls of this tool.")


def _calls(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every tools/call on a server, in order of arrival, with how it ended: ``finished``,
    ``errored``, ``cancelled`` (asked by the client: a notice came), ``cut`` (its connection
    closed under it: a cancel without notice, a "Connection closed" error, or still open when
    the connection stopped) or ``open``."""
    calls: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    noticed: set[tuple[Any, Any, Any]] = set()
    stops: dict[tuple[Any, Any], float] = {}
    for e in events:
        conn = (e.get("process"), e.get("connection"))
        key = (*conn, e.get("request_id"))
        kind = e.get("kind")
        if kind == "request" and e.get("method") == "tools/call":
            calls[key] = {
                "request_id": e.get("request_id"),
                "tool": e.get("tool"),
                "arguments": e.get("arguments") or {},
                "connection": e.get("connection"),
                "process": e.get("process"),
                "start": float(e.get("time", 0.0)),
                "end": None,
                "how": "open",
            }
        elif kind in _ENDS and key in calls and calls[key]["end"] is None:
            code = (e.get("detail") or {}).get("code")
            calls[key]["end"] = float(e.get("time", 0.0))
            calls[key]["how"] = "cut" if kind == "errored" and code == _CLOSED else kind
        elif kind == "cancel_notice":
            noticed.add(key)
        elif kind == "stopped":
            stops[conn] = float(e.get("time", 0.0))
    for key, call in calls.items():
        if call["how"] == "cancelled" and key not in noticed:
            call["how"] = "cut"
        elif call["how"] == "open" and key[:2] in stops:
            call["how"], call["end"] = "cut", stops[key[:2]]
    return list(calls.values())


@parameterised("no_collateral_failures", params=CallsParams, needs=["server_events"])
def no_collateral_failures(record: RunRecord, params: CallsParams, name: str) -> Verdict:
    servers, unjudged = _servers(record, params.server, name)
    if unjudged is not None:
        return unjudged
    found: list[dict[str, Any]] = []
    total = failed = 0
    for server, events in servers.items():
        calls = _calls(events)
        total += len(calls)
        for index, call in enumerate(calls):
            if call["how"] != "cut" or (params.tool and call["tool"] != params.tool):
                continue
            failed += 1
            retry = next(
                (
                    later
                    for later in calls[index + 1 :]
                    if later["tool"] == call["tool"] and later["arguments"] == call["arguments"]
                ),
                None,
            )
            if retry is None or retry["how"] != "finished":
                continue
            siblings = [
                other
                for other in calls
                if other is not call
                and other["connection"] == call["connection"]
                and other["process"] == call["process"]
                and other["start"] <= call["end"]
                and (other["end"] is None or other["end"] >= call["start"])
            ]
            found.append({"server": server, "call": call, "retry": retry, "siblings": siblings})
    if found:
        f = found[0]
        call, retry = f["call"], f["retry"]
        args = json.dumps(call["arguments"], ensure_ascii=False, sort_keys=True)
        others = ", ".join(
            f"{s['tool']} (request {s['request_id']}, {s['how']})" for s in f["siblings"]
        )
        beside = f" beside {others}" if others else ""
        return Verdict(
            name,
            False,
            f"{call['tool']} {args} (request {call['request_id']} on {f['server']} "
            f"connection {call['connection']}) was cut off at {_t(call['end'])}{beside}; the "
            f"same call again (request {retry['request_id']}, connection "
            f"{retry['connection']}) finished at {_t(retry['end'])}: it failed only because "
            f"of another call.",
            found,
        )
    if not total:
        return Verdict.cannot_judge(name, "no tool call reached a server")
    return Verdict(
        name,
        True,
        f"{total} tool call(s), {failed} cut off by their connection closing; none of those "
        f"finished when made again.",
    )


class NothingWritten(_Params):
    """Writes that must not happen: to a context, optionally by a caller's context."""

    context: str = Field(min_length=1, description="The context nothing may be written to.")
    by: str | None = Field(
        default=None,
        description="Only writes made from this caller context (the context the runtime "
        "named in the call's _meta); default: from any.",
    )
    tools: list[str] = Field(
        min_length=1, description="The tools that write (e.g. [chat_post_message])."
    )
    argument: str = Field(
        default="context_id",
        description="The argument naming the context written to; without it, the caller's.",
    )


@parameterised("nothing_written", params=NothingWritten, needs=["server_events"])
def nothing_written(record: RunRecord, params: NothingWritten, name: str) -> Verdict:
    if not record.server_events:
        return Verdict.cannot_judge(name, "the run has no fake MCP server records")
    writes = [
        {**e, "server": server}  # the record's name for the server
        for server, events in record.server_events.items()
        for e in events
        if e.get("kind") == "request"
        and e.get("method") == "tools/call"
        and e.get("tool") in params.tools
    ]
    to_x = [
        e
        for e in writes
        if (e.get("arguments") or {}).get(params.argument, e.get("context_id")) == params.context
        and (params.by is None or e.get("context_id") == params.by)
    ]
    by = f" from context {params.by}" if params.by else ""
    if to_x:
        first = to_x[0]
        caller = first.get("context_id")
        return Verdict(
            name,
            False,
            f"{len(to_x)} of {len(writes)} write(s) went to context {params.context}{by}; "
            f"the first, {first.get('tool')} (request {first.get('request_id')} on "
            f"{first.get('server')}) at {_t(first.get('time'))}"
            + (f", called from context {caller}" if caller else "")
            + ".",
            [
                {
                    k: e.get(k)
                    for k in ("server", "tool", "request_id", "time", "context_id", "arguments")
                }
                for e in to_x
            ],
        )
    tools = ", ".join(params.tools)
    return Verdict(
        name,
        True,
        f"None of {len(writes)} call(s) of {tools} wrote to context {params.context}{by}.",
    )


class EndsWithin(_Params):
    """A deadline for everything the run started."""

    seconds: float = Field(gt=0, description="Scenario seconds by which everything has ended.")


def _activity(record: RunRecord) -> Iterator[tuple[float, str, str]]:
    """(time, what, kind) of every end the run recorded: API requests, server requests,
    scheduled tasks' answers."""
    for row in record.journal:
        what = f"API request {row.get('seq')} (agent {row.get('agent')})"
        yield float(row.get("time", 0.0)), what, "API request(s)"
    for server, events in record.server_events.items():
        for e in events:
            if e.get("kind") in _ENDS:
                call = f"{e.get('tool') or e.get('method')} (request {e.get('request_id')})"
                what = f"{call} on {server} {e.get('kind')}"
                yield float(e.get("time", 0.0)), what, "server request(s)"
    for task, answer in (record.result.get("tasks") or {}).items():
        if isinstance(answer, dict) and answer.get("ended") is not None:
            yield float(answer["ended"]), f"task {task} answered", "task answer(s)"


# Real seconds a live timer or process may be late on a loaded machine.
_LIVE_SLACK_S = 0.25


@parameterised("ends_within", params=EndsWithin, needs=["api_requests", "server_events", "result"])
def ends_within(record: RunRecord, params: EndsWithin, name: str) -> Verdict:
    if record.mode != "sim" and not all(
        e.get("clock") == "run" for es in record.server_events.values() for e in es
    ):
        return Verdict.cannot_judge(name, "the servers' records are not on the run's clock")
    limit = params.seconds
    if record.hung:
        pending = "; ".join(record.pending[:3]) or "nothing finished"
        return Verdict(name, False, f"The run hung past its budget: {pending}.")
    open_calls = [
        (server, c)
        for server, events in record.server_events.items()
        for c in _calls(events)
        if c["how"] == "open"
    ]
    if open_calls:
        server, call = open_calls[0]
        return Verdict(
            name,
            False,
            f"{len(open_calls)} tool call(s) never ended; the first, {call['tool']} (request "
            f"{call['request_id']} on {server}), started at {_t(call['start'])}.",
            [{"server": s, **c} for s, c in open_calls],
        )
    seen = list(_activity(record))
    if not seen:
        return Verdict.cannot_judge(name, "the run recorded no API request, call or answer")
    slack = 1e-6 if record.mode == "sim" else _LIVE_SLACK_S / record.time_scale
    last_time, last_what, _ = max(seen, key=lambda s: s[0])
    if last_time > limit + slack:
        late = sum(1 for t, _, _ in seen if t > limit + slack)
        return Verdict(
            name,
            False,
            f"{late} thing(s) ended after {_t(limit)}; the last, {last_what}, at {_t(last_time)}.",
            [{"time": t, "what": w} for t, w, _ in seen if t > limit + slack],
        )
    kinds: dict[str, int] = {}
    for _, _, kind in seen:
        kinds[kind] = kinds.get(kind, 0) + 1
    counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    return Verdict(
        name, True, f"Everything ended by {_t(last_time)}, within {_t(limit)} ({counts})."
    )
