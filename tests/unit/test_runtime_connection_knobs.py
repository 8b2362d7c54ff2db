"""The reference runtime's MCP connection knobs and client-side cancels, each against real
in-memory MCP servers in a seeded sim run: what the knob changes is what the run records."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import ScenarioError
from harness.scenarios import parse_scenario, run_scenario

# Two parallel calls to one server: A's first call is slow (200 s), B's is quick (80 s).
BASE = """
name: knobs
description: two parallel calls on one shared server
runtime:
  prompt: go
oracles: [agents_completed]
expect: {buggy: [agents_completed]}
budget: {virtual: 1800, wall: 30}
servers:
  ssh:
    fake: ssh
    timeout: 150
    script:
      tools:
        mem_ssh:
          match:
            - args: {host: a}
              then: {latency: 200, result: {text: "a done"}}
          default: {latency: 80, result: {text: "b done"}}
model:
  agents:
    main:
      turns:
        - tool_use:
            - {name: mem_ssh, input: {host: a, command: x}}
            - {name: mem_ssh, input: {host: b, command: y}}
        - text: "done: {tool_results}"
"""


def _run(extra: str = "", **knobs: Any) -> Any:
    text = BASE + extra
    if knobs:
        flat = ", ".join(f"{k}: {v}" for k, v in knobs.items())
        text += f"policies:\n  fixed: {{{flat}}}\n"
    return run_scenario(parse_scenario(text), policy="fixed")


def _events(outcome: Any, kind: str) -> list[dict[str, Any]]:
    return outcome.record.runtime(kind)


def _ended(outcome: Any) -> list[tuple[str, str]]:
    return [(e["tool"], e["outcome"]) for e in _events(outcome, "call_ended")]


def test_reconnect_on_close_keeps_the_session_after_a_timeout() -> None:
    replaced = _run()
    kept = _run(reconnect_on="close")
    assert [e["decision"] for e in _events(replaced, "reconnect")][-1] == "performed"
    assert _events(kept, "reconnect") == []
    assert [e["reason"] for e in _events(kept, "connecting")] == ["lazy"]
    assert ("mem_ssh", "timeout") in _ended(kept)


def test_no_timeout_lets_the_slow_call_finish() -> None:
    outcome = _run(
        extra="",
    )
    assert ("mem_ssh", "timeout") in _ended(outcome)
    text = BASE.replace("timeout: 150", "timeout: null")
    untimed = run_scenario(parse_scenario(text), policy="fixed")
    assert sorted(_ended(untimed)) == [("mem_ssh", "ok"), ("mem_ssh", "ok")]
    starts = [e["timeout"] for e in _events(untimed, "call_started")]
    assert starts == [None, None]


def test_a_tool_timeout_overrides_the_servers() -> None:
    text = BASE.replace("timeout: 150", "timeout: null\n    tool_timeouts: {mem_ssh: 100}")
    outcome = run_scenario(parse_scenario(text), policy="fixed")
    assert [e["timeout"] for e in _events(outcome, "call_started")][:2] == [100.0, 100.0]
    assert ("mem_ssh", "timeout") in _ended(outcome)


def test_a_bad_tool_timeout_is_refused_at_load() -> None:
    text = BASE.replace("timeout: 150", "tool_timeouts: {mem_ssh: -1}")
    with pytest.raises(ScenarioError, match=r"tool_timeouts\.mem_ssh"):
        parse_scenario(text)


@pytest.mark.parametrize(("lock", "sessions"), [(True, 1), (False, 2)])
def test_lazy_sessions_race_their_creation_without_the_lock(lock: bool, sessions: int) -> None:
    outcome = _run(session_open="lazy", session_lock=str(lock).lower(), reconnect_on="close")
    reasons = [e["reason"] for e in _events(outcome, "connecting")]
    assert reasons == ["catalogue", *["lazy"] * sessions]
    (at_close,) = _events(outcome, "connections_at_close")
    assert at_close["orphans"] == sessions - 1


def test_per_call_sessions_open_one_session_per_call() -> None:
    outcome = _run(session_open="per_call")
    reasons = [e["reason"] for e in _events(outcome, "connecting")]
    # A's call times out and is retried once, on a session of its own again.
    assert reasons == ["catalogue", "per_call", "per_call", "per_call"]
    assert _events(outcome, "reconnect") == []  # nothing shared, nothing to reconnect
    (at_close,) = _events(outcome, "connections_at_close")
    assert at_close["live"] == 0


def test_a_failed_refresh_evicts_or_keeps_the_catalogue() -> None:
    # The refresh after the timeout is held past the call timeout: it fails.
    faults = (
        "faults:\n  - {type: delay, target: ssh, seconds: 400,"
        " match: {method: tools/list, nth: 2, direction: downstream}}\n"
    )
    evicted = _run(
        extra=faults,
        reconnect_on="close",
        tools_refresh_after_timeout="true",
        tools_on_failed_refresh="evict",
    )
    kept = _run(extra=faults, reconnect_on="close", tools_refresh_after_timeout="true")
    assert [e["decision"] for e in _events(evicted, "tools_refresh_failed")] == ["evicted"]
    assert [e["decision"] for e in _events(kept, "tools_refresh_failed")] == ["kept"]
    last = evicted.record.journal[-1]["request"]
    assert "mem_ssh" not in (last.get("tools") or [])
    assert "mem_ssh" in (kept.record.journal[-1]["request"].get("tools") or [])


def test_a_stray_reply_closes_the_session_only_when_asked() -> None:
    faults = (
        "faults:\n  - {type: unknown_id, target: ssh,"
        " match: {method: tools/call, direction: downstream, nth: 1}}\n"
    )
    ignored = _run(extra=faults, reconnect_on="close")
    closed = _run(extra=faults, reconnect_on="close", late_reply="close_session")
    assert _events(ignored, "stray_reply") == []
    assert len(_events(closed, "stray_reply")) == 1
    assert ("mem_ssh", "connection_closed") in _ended(closed)
    assert ("mem_ssh", "connection_closed") not in _ended(ignored)


def test_a_cancel_fault_cancels_the_matching_call_and_tells_the_server() -> None:
    faults = (
        "faults:\n  - {type: cancel, target: ssh,"
        " match: {method: tools/call, tool: mem_ssh, nth: 1}, after: 10}\n"
    )
    outcome = _run(extra=faults)
    (cancelled,) = _events(outcome, "call_cancelled_by_client")
    assert cancelled["nth"] == 1
    server = outcome.record.server_events["ssh"]
    notices = [e for e in server if e["kind"] == "cancel_notice"]
    assert [e["time"] for e in notices] == [10.0]
    assert sorted(_ended(outcome)) == [("mem_ssh", "cancelled"), ("mem_ssh", "ok")]


def test_a_cancel_at_a_time_cancels_every_call_in_flight() -> None:
    outcome = _run(extra="faults:\n  - {type: cancel, at: 5}\n")
    assert len(_events(outcome, "call_cancelled_by_client")) == 2
    server = outcome.record.server_events["ssh"]
    assert len([e for e in server if e["kind"] == "cancel_notice"]) == 2


def test_a_cancel_needs_the_reference_runtime() -> None:
    text = BASE.replace("  prompt: go\n", "  prompt: go\n  adapter: some.module:create\n")
    with pytest.raises(ScenarioError, match="only the reference runtime"):
        parse_scenario(text + "faults:\n  - {type: cancel, at: 5}\n")


def test_a_connection_knob_for_another_runtime_is_refused_at_load() -> None:
    text = BASE.replace("  prompt: go\n", "  prompt: go\n  adapter: some.module:create\n")
    with pytest.raises(ScenarioError, match=r"call_retries is a knob of the reference runtime"):
        parse_scenario(text + "policies:\n  buggy: {call_retries: 0}\n")


# A's call is cancelled at 10 s; B's (80 s) is still in flight on the same session then, and a
# second turn calls the server again after the first turn's results.
_CANCEL_A = (
    "faults:\n  - {type: cancel, target: ssh,"
    " match: {method: tools/call, tool: mem_ssh, nth: 1}, after: 10}\n"
)
_LATER_CALL = BASE.replace(
    '        - text: "done: {tool_results}"\n',
    "        - tool_use: [{name: mem_ssh, input: {host: c, command: z}}]\n"
    '        - text: "done: {tool_results}"\n',
)


def _run_later(**knobs: Any) -> Any:
    flat = ", ".join(f"{k}: {v}" for k, v in knobs.items())
    text = _LATER_CALL + _CANCEL_A + f"policies:\n  fixed: {{{flat}}}\n"
    return run_scenario(parse_scenario(text), policy="fixed")


@pytest.mark.parametrize(
    ("effect", "ended", "connects"),
    [
        # notify: the cancel is a notification; B and the later call run on the same session.
        ("notify", [("mem_ssh", "cancelled"), ("mem_ssh", "ok"), ("mem_ssh", "ok")], 1),
        # abort_transport: the abort closes the session under B, whose retry and the later
        # call run on a new one.
        (
            "abort_transport",
            [
                ("mem_ssh", "cancelled"),
                ("mem_ssh", "connection_closed"),
                ("mem_ssh", "ok"),
                ("mem_ssh", "ok"),
            ],
            2,
        ),
        # abort_disconnect: B dies with the session, nothing reconnects, the later call is
        # refused without reaching the server.
        ("abort_disconnect", [("mem_ssh", "cancelled"), ("mem_ssh", "connection_closed")], 1),
    ],
)
def test_what_a_cancel_does_to_the_transport(
    effect: str, ended: list[tuple[str, str]], connects: int
) -> None:
    outcome = _run_later(cancel_effect=effect)
    assert _ended(outcome) == ended
    assert len(_events(outcome, "connected")) == connects
    aborted = _events(outcome, "transport_aborted")
    refused = _events(outcome, "call_refused")
    if effect == "notify":
        assert aborted == []
        assert refused == []
    else:
        then = "disconnected" if effect == "abort_disconnect" else "reopen_on_next_call"
        assert [(e["then"], e["in_flight"]) for e in aborted] == [(then, 1)]
        assert len(refused) == (1 if effect == "abort_disconnect" else 0)
    last = outcome.record.journal[-1]["request"]["messages"][-1]["blocks"][-1]
    assert last.get("is_error", False) == (effect == "abort_disconnect")
