"""Live mode: a one-shot fault counts per server, as in sim. The plan kills the ssh server on
its 2nd tools/call; the runtime starts it anew behind a new interposer, whose calls are the
server's 3rd and later: no second kill. The kill's record is on the run's clock and names the
process it killed."""

from __future__ import annotations

import pytest

from harness.scenarios import parse_scenario
from harness.scenarios.live import run_scenario_live

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SCENARIO = """
name: kill_once
description: Four calls in a row; the plan kills the server under the second one.
runtime:
  prompt: Check web1 four times.
oracles: [agents_completed]
expect: {buggy: [agents_completed]}
budget: {virtual: 600, wall: 60}
servers:
  ssh:
    fake: ssh
    timeout: 30
    script:
      tools:
        mem_ssh:
          default: {latency: 5, result: {text: "web1: up 3 days"}}
faults:
  - {name: kill_second_call, type: kill, target: ssh, match: {method: tools/call, nth: 2}}
model:
  agents:
    main:
      turns:
        - tool_use: [{name: mem_ssh, input: {host: web1, command: uptime}}]
        - tool_use: [{name: mem_ssh, input: {host: web1, command: uptime}}]
        - tool_use: [{name: mem_ssh, input: {host: web1, command: uptime}}]
        - tool_use: [{name: mem_ssh, input: {host: web1, command: uptime}}]
        - text: "Done: {tool_results}"
"""


def test_a_one_shot_kill_fires_once_across_respawns() -> None:
    outcome = run_scenario_live(parse_scenario(SCENARIO), policy="fixed", time_scale=0.01)
    record = outcome.record
    calls = [e for e in record.server_events["ssh"] if e.get("kind") == "request"]
    calls = [e for e in calls if e.get("method") == "tools/call"]
    processes = list(dict.fromkeys(e["process"] for e in calls))
    # The server was started anew and served the later calls.
    assert len(processes) >= 2, calls
    assert len(calls) >= 4, calls
    kills = [e for e in record.fault_events if e.get("type") == "kill"]
    assert len(kills) == 1, kills
    (kill,) = kills
    assert kill["process"] == processes[0]
    assert kill["clock"] == "run"
    # On the run's clock the kill comes after the first process's calls (the one it hit never
    # reached the server's log) and before the new process's first call.
    first_run = [e["time"] for e in calls if e["process"] == processes[0]]
    respawned = min(e["time"] for e in calls if e["process"] == processes[1])
    assert max(first_run) <= kill["time"] <= respawned, (kill, calls)
