"""Scope oracles with parameters: what crossed from one context, session or agent to another.

They read only what the rig records (the fake API's journal, the fake servers' request records),
so they judge a user's own runtime as well as the reference one. Oracles that compare texts need
the journal's message content (``runtime: {capture_content: true}``); without it they cannot
judge. Each sentence says what was seen.

- ``canary_confined: {canary: TEXT, allowed: [agents]}``: the canary (a text planted in one
  context: a message, a thread id) reaches no request of any agent but the allowed ones, in a
  tool result, a prompt or the system prompt.
- ``fact_found: {fact: TEXT, agents: [agents], tools: [tools]}``: every listed agent found the
  fact in the results of its (listed) tools; the calls and hits are counted per scope, so "asked
  but saw too little" is told apart from "never asked".
- ``history_prefix_kept: {agents: [agents]}``: each request of a listed agent begins with the
  messages of its previous request: its history only grew (another agent's writes, or its own
  compaction, would show as a changed or missing earlier message).
- ``own_tool_calls_only: {agents: [agents]}``: an agent's requests carry only tool calls its own
  responses made, never another agent's.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from harness.oracles._registry import Verdict, parameterised
from harness.oracles.record import RunRecord

__all__ = ["AgentsParams", "CanaryParams", "FactParams"]


def _one_or_many_schema(schema: dict[str, Any]) -> None:
    """The schema says what the loader takes: a list of texts, or a single text."""
    for name, field in list(schema.get("properties", {}).items()):
        if field.get("type") == "array" and field.get("items", {}).get("type") == "string":
            keep = {k: field.pop(k) for k in ("title", "description", "default") if k in field}
            schema["properties"][name] = {**keep, "anyOf": [{"type": "string"}, field]}


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_one_or_many_schema)

    @field_validator("*", mode="before")
    @classmethod
    def _one_or_many(cls, value: object, info: ValidationInfo) -> object:
        # A single text where a list is asked for is a list of one.
        field = cls.model_fields[str(info.field_name)]
        wants_list = "list" in str(field.annotation)
        return [value] if wants_list and isinstance(value, str) else value


class CanaryParams(_Params):
    """A text planted in one context and the agents that may see it."""

    canary: list[str] = Field(
        min_length=1,
        description="The canary text (or several): a private detail, a thread id.",
    )
    allowed: list[str] = Field(
        default_factory=list, description="The agents whose requests may carry it."
    )


class FactParams(_Params):
    """A fact that must be found, by whom and with which tools."""

    fact: str = Field(min_length=1, description="The text the results must contain.")
    agents: list[str] = Field(min_length=1, description="The agents that must find it.")
    tools: list[str] = Field(
        default_factory=list,
        description="The recall or read tools whose results count (default: every tool).",
    )


class AgentsParams(_Params):
    """The agents an oracle judges."""

    agents: list[str] = Field(
        default_factory=list,
        description="The agents judged (default: every agent in the journal).",
    )


_MESSAGES_ENDPOINT = "/v1/messages"
_NO_CONTENT = (
    "the API journal holds no message content (set runtime.capture_content: true so the "
    "journal keeps what each request carried)"
)


def _t(value: Any) -> str:
    return f"{float(value or 0.0):.1f} s"


def _rows(record: RunRecord) -> list[dict[str, Any]]:
    """The Messages requests of the journal that carried messages, in order."""
    return [
        r
        for r in record.journal
        if r.get("endpoint", _MESSAGES_ENDPOINT) == _MESSAGES_ENDPOINT
        and isinstance((r.get("request") or {}).get("messages"), list)
    ]


def _messages(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in (row.get("request") or {}).get("messages") or [] if isinstance(m, dict)]


def _captured(row: dict[str, Any]) -> bool:
    """Whether the row kept the messages themselves (not only their block shapes)."""
    return any("content" in m for m in _messages(row))


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content", message.get("blocks"))
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(
        str(b.get("text", "")) for b in content or [] if isinstance(b, dict) and "text" in b
    )


def _places(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, text) for every text a request carried: system prompt, texts, tool calls and
    tool results (named by tool where the request says it)."""
    request = row.get("request") or {}
    out: list[tuple[str, str]] = []
    system = request.get("system")
    if isinstance(system, str):
        out.append(("the system prompt", system))
    elif isinstance(system, list):
        out += [
            ("the system prompt", str(b.get("text", ""))) for b in system if isinstance(b, dict)
        ]
    names: dict[str, str] = {}
    for message in _messages(row):
        for block in _blocks(message):
            kind = block.get("type")
            if kind == "text":
                out.append((f"a {message.get('role')} text", str(block.get("text", ""))))
            elif kind == "tool_use":
                names[str(block.get("id"))] = str(block.get("name"))
                out.append((f"a {block.get('name')} call", json.dumps(block.get("input"))))
            elif kind == "tool_result":
                tool = names.get(str(block.get("tool_use_id")), "tool")
                out.append((f"a {tool} result", _result_text(block)))
    return out


@parameterised("canary_confined", params=CanaryParams, needs=["api_requests"])
def canary_confined(record: RunRecord, params: CanaryParams, name: str) -> Verdict:
    canaries = params.canary
    allowed = set(params.allowed)
    rows = _rows(record)
    if not any(_captured(r) for r in rows):
        return Verdict.cannot_judge(name, _NO_CONTENT)
    leaks: list[dict[str, Any]] = []
    owned = 0
    for row in rows:
        for where, text in _places(row):
            canary = next((c for c in canaries if c in text), None)
            if canary is None:
                continue
            if row.get("agent") in allowed:
                owned += 1
                break
            leaks.append(
                {
                    "journal_seq": row.get("seq"),
                    "time": row.get("time"),
                    "agent": row.get("agent"),
                    "canary": canary,
                    "where": where,
                }
            )
            break
    planted = _in_server_records(record, canaries)
    if leaks:
        first = leaks[0]
        owners = ", ".join(sorted(allowed)) or "no agent"
        return Verdict(
            name,
            False,
            f"At {_t(first['time'])} agent {first['agent']}'s request carried the canary "
            f"{first['canary']!r} in {first['where']}; it belongs to {owners} "
            f"({len(leaks)} request(s) of other agents carried it).",
            leaks,
        )
    if not owned and not planted:
        return Verdict.cannot_judge(
            name,
            f"the canary {canaries[0]!r} appears in no request and no tool call of the run, not "
            f"even the allowed agents': nothing shows it was there to leak",
        )
    return Verdict(
        name,
        True,
        f"The canary reached {owned} request(s), all of {', '.join(sorted(allowed)) or 'none'}; "
        f"none of the other agents' {sum(1 for r in rows if r.get('agent') not in allowed)} "
        f"request(s) carried it.",
    )


def _in_server_records(record: RunRecord, texts: list[str]) -> bool:
    blob = json.dumps(record.server_events, default=str)
    return any(t in blob for t in texts)


def _calls(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """tool_use id -> {name, input, result} over every request of one agent."""
    calls: dict[str, dict[str, Any]] = {}
    for row in rows:
        for message in _messages(row):
            for block in _blocks(message):
                if block.get("type") == "tool_use":
                    calls.setdefault(
                        str(block.get("id")),
                        {"name": block.get("name"), "input": block.get("input") or {}},
                    )
                elif block.get("type") == "tool_result":
                    call = calls.get(str(block.get("tool_use_id")))
                    if call is not None and "result" not in call:
                        call["result"] = _result_text(block)
    return calls


def _scope_label(call: dict[str, Any]) -> str:
    """The scope a call read, as its result reports it (the chat and memory servers say), else
    as its input asked."""
    try:
        result = json.loads(call.get("result") or "")
    except ValueError:
        result = None
    if isinstance(result, dict) and "scope" in result:
        where = result.get("contexts") or result.get("context_id")
        where = ", ".join(map(str, where)) if isinstance(where, list) else where
        return f"{result['scope']} ({where})" if where else str(result["scope"])
    given = call["input"]
    asked = [f"{k} {given[k]}" for k in ("context_id", "scope") if given.get(k) is not None]
    return ", ".join(asked) or "no scope given"


def _counts(per_scope: dict[str, list[int]]) -> str:
    return "; ".join(f"{s}: {c} call(s), {h} hit(s)" for s, (c, h) in per_scope.items())


@parameterised("fact_found", params=FactParams, needs=["api_requests"])
def fact_found(record: RunRecord, params: FactParams, name: str) -> Verdict:
    agents = params.agents
    tools = set(params.tools)
    rows = _rows(record)
    if not any(_captured(r) for r in rows):
        return Verdict.cannot_judge(name, _NO_CONTENT)
    fact = params.fact
    findings: list[dict[str, Any]] = []
    for agent in agents:
        mine = [r for r in rows if r.get("agent") == agent]
        calls = [
            c for c in _calls(mine).values() if not tools or c["name"] in tools if "result" in c
        ]
        per_scope: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for call in calls:
            counts = per_scope[_scope_label(call)]
            counts[0] += 1
            counts[1] += fact in call["result"]
        hits = sum(h for _, h in per_scope.values())
        findings.append(
            {
                "agent": agent,
                "requests": len(mine),
                "calls": len(calls),
                "hits": hits,
                "per_scope": {s: {"calls": c, "hits": h} for s, (c, h) in per_scope.items()},
                "_text": _counts(per_scope),
            }
        )
    missed = [f for f in findings if not f["hits"]]
    evidence = [{k: v for k, v in f.items() if k != "_text"} for f in findings]
    if missed:
        first = missed[0]
        what = ", ".join(sorted(tools)) or "any tool"
        if not first["requests"]:
            sentence = f"Agent {first['agent']} made no API request: it never asked for {fact!r}."
        elif not first["calls"]:
            sentence = (
                f"Agent {first['agent']} never asked: none of its {first['requests']} request(s) "
                f"carried a result of {what}, so {fact!r} was never looked for."
            )
        else:
            sentence = (
                f"Agent {first['agent']} asked but saw too little: {fact!r} was in none of its "
                f"{first['calls']} result(s) of {what} ({first['_text']})."
            )
        return Verdict(name, False, sentence, evidence)
    found = "; ".join(f"{f['agent']} ({f['_text']})" for f in findings)
    return Verdict(name, True, f"Every listed agent found {fact!r}: {found}.", evidence)


def _agents(params: AgentsParams, rows: list[dict[str, Any]]) -> list[str]:
    return params.agents or sorted({str(r.get("agent")) for r in rows if r.get("agent")})


def _shape(message: dict[str, Any]) -> Any:
    """A message as the journal's summary keeps it (role, block types and tool ids)."""
    blocks = []
    for block in _blocks(message):
        entry = {"type": block.get("type")}
        for key in ("id", "tool_use_id"):
            if key in block:
                entry[key] = block[key]
        blocks.append(entry)
    return {"role": message.get("role"), "blocks": blocks}


def _first_text(message: dict[str, Any]) -> str:
    texts = [str(b.get("text", "")) for b in _blocks(message) if b.get("type") == "text"]
    return (texts[0] if texts else "")[:80]


@parameterised("history_prefix_kept", params=AgentsParams, needs=["api_requests"])
def history_prefix_kept(record: RunRecord, params: AgentsParams, name: str) -> Verdict:
    rows = _rows(record)
    by_content = any(_captured(r) for r in rows)
    key = (lambda m: m) if by_content else _shape
    broken: list[dict[str, Any]] = []
    compared = 0
    for agent in _agents(params, rows):
        mine = [r for r in rows if r.get("agent") == agent]
        for previous, row in itertools.pairwise(mine):
            before = [key(m) for m in _messages(previous)]
            now = [key(m) for m in _messages(row)]
            compared += 1
            kept = 0
            while kept < min(len(before), len(now)) and before[kept] == now[kept]:
                kept += 1
            if kept < len(before):
                changed = _messages(row)[kept] if kept < len(now) else None
                broken.append(
                    {
                        "journal_seq": row.get("seq"),
                        "time": row.get("time"),
                        "agent": agent,
                        "earlier_messages": len(before),
                        "kept": kept,
                        "now": (
                            f"a {changed.get('role')} message beginning {_first_text(changed)!r}"
                            if changed is not None
                            else "nothing"
                        ),
                    }
                )
    basis = "by content" if by_content else "by roles, block types and tool ids only"
    if broken:
        first = broken[0]
        return Verdict(
            name,
            False,
            f"At {_t(first['time'])} agent {first['agent']}'s request kept only {first['kept']} "
            f"of the {first['earlier_messages']} messages its previous request began with; in "
            f"place of message {first['kept'] + 1} it carried {first['now']} (compared "
            f"{basis}).",
            broken,
        )
    if not compared:
        return Verdict.cannot_judge(
            name, "no listed agent made two requests: there is no history to compare"
        )
    return Verdict(
        name,
        True,
        f"Each of {compared} request(s) began with its agent's previous request: the histories "
        f"only grew (compared {basis}).",
    )


@parameterised("own_tool_calls_only", params=AgentsParams, needs=["api_requests"])
def own_tool_calls_only(record: RunRecord, params: AgentsParams, name: str) -> Verdict:
    rows = _rows(record)
    made: dict[str, str] = {}  # tool_use id -> the agent whose response made it
    for row in record.journal:
        for tool_use_id in (row.get("response") or {}).get("tool_use_ids") or []:
            made.setdefault(str(tool_use_id), str(row.get("agent")))
    agents = set(_agents(params, rows))
    foreign: list[dict[str, Any]] = []
    checked = requests = 0
    for row in rows:
        agent = str(row.get("agent"))
        if agent not in agents:
            continue
        requests += 1
        for message in _messages(row):
            for block in _blocks(message):
                if block.get("type") != "tool_use":
                    continue
                checked += 1
                maker = made.get(str(block.get("id")))
                if maker != agent:
                    foreign.append(
                        {
                            "journal_seq": row.get("seq"),
                            "time": row.get("time"),
                            "agent": agent,
                            "tool_use_id": block.get("id"),
                            "tool": block.get("name"),
                            "made_by": maker,
                        }
                    )
    if foreign:
        first = foreign[0]
        by = f"made by agent {first['made_by']}" if first["made_by"] else "no response made"
        tool = f" ({first['tool']})" if first.get("tool") else ""
        ids = sorted({str(f["tool_use_id"]) for f in foreign if f["agent"] == first["agent"]})
        return Verdict(
            name,
            False,
            f"At {_t(first['time'])} agent {first['agent']}'s request carried tool call "
            f"{first['tool_use_id']}{tool} that it never made ({by}); {len(ids)} foreign tool "
            f"call(s) in its requests.",
            foreign,
        )
    if not requests:
        return Verdict.cannot_judge(name, "the listed agents made no API request")
    return Verdict(
        name,
        True,
        f"The {requests} request(s) of {', '.join(sorted(agents))} carried only their own "
        f"agent's tool calls ({checked} tool call block(s) checked).",
    )
