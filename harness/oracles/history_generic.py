"""History oracles: what a persisted thread holds at the end of a run, and what the tools did.

- ``persisted_history_valid``: each persisted thread, reloaded as it stands and given one more
  user turn, passes the Messages API's validation (the fake API's rules, with the real API's
  texts): the next run on it would not be refused.
- ``thread_writes_survive``: every message a run wrote to a thread is still in it at the end,
  itself or inside a compaction summary that covers it (param ``agent``: only that writer's).
- ``tool_calls_at_most``: the MCP servers received at most ``max`` tool calls (param ``tool``:
  of that tool only), so nothing ran past a tool budget.

The first two read the runtime's thread store records (``threads``): a runtime under test that
is not the reference one has none, and they cannot judge it. The third reads the fake servers'
own records.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.oracles._registry import Verdict, oracle
from harness.oracles.record import RunRecord

__all__: list[str] = []

# The one user turn a reload adds before it is sent.
_NEXT_TURN = {"role": "user", "content": [{"type": "text", "text": "(next turn)"}]}


def _t(value: Any) -> str:
    return f"{float(value or 0.0):.1f} s"


def _final_threads(record: RunRecord) -> dict[str, dict[str, Any]]:
    """Each thread's last ``thread_stored`` record."""
    return {str(e.get("thread")): e for e in record.runtime("thread_stored")}


def _refusal(messages: list[dict[str, Any]]) -> str | None:
    """The API's 400 text for this history with one more user turn, or None."""
    from fake_servers.anthropic._errors import ApiError
    from fake_servers.anthropic._validation import validate_request

    body = {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [*messages, _NEXT_TURN]}
    try:
        validate_request(body)
    except ApiError as exc:
        return exc.message
    return None


@oracle("persisted_history_valid", needs=["threads"])
def persisted_history_valid(record: RunRecord) -> Verdict:
    name = "persisted_history_valid"
    threads = _final_threads(record)
    if not threads:
        return Verdict.cannot_judge(name, "no run of this scenario persisted a thread")
    bad = []
    for thread, stored in sorted(threads.items()):
        messages = stored.get("messages")
        if not isinstance(messages, list):
            return Verdict.cannot_judge(name, f"thread {thread}'s record holds no messages")
        refusal = _refusal(messages)
        if refusal is not None:
            bad.append({"thread": thread, "messages": len(messages), "refusal": refusal})
    if bad:
        first = bad[0]
        return Verdict(
            name,
            False,
            f"Thread {first['thread']} as persisted ({first['messages']} messages), reloaded "
            f"with one more user turn, is refused by the API: {first['refusal']}",
            bad,
        )
    counts = ", ".join(f"{t}: {len(s.get('messages') or [])}" for t, s in sorted(threads.items()))
    return Verdict(
        name,
        True,
        f"{len(threads)} persisted thread(s), reloaded with one more user turn, pass the API's "
        f"validation: {counts} message(s).",
    )


@oracle("thread_writes_survive", needs=["threads"], accepts=["agent"])
def thread_writes_survive(record: RunRecord) -> Verdict:
    name = "thread_writes_survive"
    writer = record.params.get(name, {}).get("agent")
    threads = _final_threads(record)
    writes = [
        e
        for e in record.runtime("thread_written")
        if writer is None or e.get("agent") == str(writer)
    ]
    if not writes:
        who = f"agent {writer}" if writer is not None else "any run"
        return Verdict.cannot_judge(name, f"{who} wrote nothing to a persisted thread")
    # What a summary stands for: the rows it covers, and what those covered in turn.
    covers: dict[int, list[int]] = {}
    for e in record.runtime("thread_compacted"):
        for summary in e.get("summary_ids") or []:
            covers[int(summary)] = [int(i) for i in e.get("covered_ids") or []]
    lost = []
    written = 0
    for e in writes:
        thread = str(e.get("thread"))
        final = threads.get(thread)
        if final is None:
            return Verdict.cannot_judge(name, f"the end state of thread {thread} was not recorded")
        alive: set[int] = set()
        pending = [int(r["id"]) for r in final.get("rows") or [] if "id" in r]
        while pending:
            row = pending.pop()
            if row not in alive:
                alive.add(row)
                pending.extend(covers.get(row, []))
        for row_id in e.get("row_ids") or []:
            written += 1
            if int(row_id) not in alive:
                lost.append(
                    {
                        "thread": thread,
                        "row": row_id,
                        "agent": e.get("agent"),
                        "time": e.get("time"),
                    }
                )
    if lost:
        first = lost[0]
        return Verdict(
            name,
            False,
            f"{len(lost)} of {written} message(s) written to persisted threads are gone: the "
            f"first, written by {first['agent']} to thread {first['thread']} at "
            f"{_t(first['time'])}, is neither in the thread nor in a summary that covers it.",
            lost,
        )
    return Verdict(
        name,
        True,
        f"All {written} message(s) written to persisted threads are still there, as "
        "themselves or inside a summary that covers them.",
    )


@oracle("tool_calls_at_most", needs=["server_events"], accepts=["max", "tool"])
def tool_calls_at_most(record: RunRecord) -> Verdict:
    name = "tool_calls_at_most"
    params = record.params.get(name, {})
    limit = params.get("max")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        return Verdict.cannot_judge(name, "the oracle needs a 'max' parameter (calls, 0 or more)")
    tool = params.get("tool")
    calls = sorted(
        (
            e
            for events in record.server_events.values()
            for e in events
            if e.get("kind") == "request"
            and e.get("method") == "tools/call"
            and (tool is None or e.get("tool") == tool)
        ),
        key=lambda e: float(e.get("time") or 0.0),
    )
    what = f"{tool} call(s)" if tool else "tool call(s)"
    by_tool = ", ".join(
        f"{t} x{n}" for t, n in sorted(Counter(str(e.get("tool")) for e in calls).items())
    )
    if len(calls) > limit:
        past = calls[limit]
        return Verdict(
            name,
            False,
            f"The servers received {len(calls)} {what} ({by_tool}), more than the {limit} "
            f"allowed; the first past the limit, {past.get('tool')} on {past.get('server')}, "
            f"at {_t(past.get('time'))}.",
            [{k: e.get(k) for k in ("server", "tool", "time", "arguments")} for e in calls[limit:]],
        )
    seen = f" ({by_tool})" if calls else ""
    return Verdict(name, True, f"The servers received {len(calls)} {what}{seen}, at most {limit}.")
