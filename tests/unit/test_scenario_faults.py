"""A scenario's ``faults:`` plan: validated at load with file, line and field, carried into the
runtime config, applied in sim on the in-process transport and the fake API, recorded as fault
events, drawn from the seed where it gives distributions."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenarios import resolve
from harness.scenarios.model import parse_scenario
from harness.scenarios.run import run_scenario
from harness.scenarios.runner import sim_config

BASE = """\
name: faulty
description: One agent, one ssh call.
runtime: {prompt: Check web1.}
budget: {virtual: 1000, wall: 30}
servers:
  ssh: {fake: ssh, timeout: 150}
model:
  agents:
    main:
      turns:
        - tool_use: [{name: mem_ssh, input: {host: web1, command: uptime}}]
        - text: "done: {tool_results}"
oracles: [agents_completed, all_calls_resolved]
expect: {buggy: [agents_completed]}
"""


def _with(faults: str) -> str:
    return BASE + "faults:\n" + faults


@pytest.mark.parametrize(
    ("faults", "line", "field", "message"),
    [
        ("  - {type: kill, target: web, at: 3}\n", 16, "faults.0.target", "not a configured"),
        ("  - {type: kill, target: ssh, at: 5000}\n", 16, "faults.0.at", "past the virtual"),
        (
            "  - {type: llm, agent: ghost, fault: {kind: overloaded}}\n",
            16,
            "faults.0.agent",
            "not in the model script",
        ),
        (
            "  - {type: toxic, target: anthropic, toxic: {type: latency}}\n",
            16,
            "faults.0.type",
            "only 'llm' faults",
        ),
        (
            "  - {type: kill, target: ssh, at: 1}\n  - type: freeze\n    seconds: -2\n    at: 1\n",
            18,
            "faults.1.seconds",
            "greater than or equal to 0",
        ),
        ("  - {type: frozen, target: ssh}\n", 16, "faults.0", "does not match any"),
    ],
)
def test_a_bad_fault_is_named_by_line_and_field(
    faults: str, line: int, field: str, message: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(_with(faults), path="faulty.yaml")
    error = caught.value
    assert (error.line, error.field) == (line, field), str(error)
    assert message in str(error)


def test_the_plan_reaches_the_runtime_config_and_sim_keeps_servers_in_memory() -> None:
    scenario, _ = resolve("cascade_http_proxy")
    assert [f.type for f in scenario.faults] == ["toxic"]
    config = sim_config(scenario, "buggy")
    assert config.faults == scenario.faults
    assert config.servers["ssh"].transport == "memory"
    assert config.servers["ssh"].proxy is False
    assert scenario.runtime_config("buggy").servers["ssh"].proxy is True


def test_a_dropped_response_times_the_call_out_and_is_recorded() -> None:
    scenario = parse_scenario(
        _with("  - {type: drop, target: ssh, match: {method: tools/call, direction: downstream}}\n")
    )
    outcome = run_scenario(scenario, policy="fixed", seed=3)
    faults = outcome.record.fault_events
    assert [(e["source"], e["kind"], e["type"]) for e in faults] == [("fault", "applied", "drop")]
    # The call outlived its timeout; the fixed runtime reconnected once and retried.
    reconnects = outcome.record.runtime("reconnect")
    assert [(e["server"], e["reason"]) for e in reconnects] == [("ssh", "timeout")]
    assert reconnects[0]["time"] == pytest.approx(150.0, abs=1.0)
    assert len(outcome.record.runtime("call_started")) == 2
    # The fault is a span of the run's trace too.
    assert any(s["name"] == "harness.fault" for s in outcome.record.spans)


def test_an_llm_fault_reaches_the_fake_api() -> None:
    scenario = parse_scenario(
        _with("  - {type: llm, agent: main, fault: {kind: rate_limit, retry_after: 2}}\n")
    )
    outcome = run_scenario(scenario, policy="fixed", seed=0)
    statuses = [r.get("status") for r in outcome.record.journal]
    assert statuses[0] == 429
    assert 200 in statuses
    assert outcome.record.fault_events[0]["type"] == "llm"
    assert outcome.met


def test_fault_parameters_may_be_drawn_from_the_seed() -> None:
    scenario = parse_scenario(
        _with(
            "  - type: freeze\n    target: ssh\n    seconds: {uniform: [10, 400]}\n"
            "    match: {method: tools/call}\n"
        )
    )
    assert "/faults/0/seconds" in scenario.distributions
    drawn = {
        run_scenario(scenario, policy="fixed", seed=seed).draws["/faults/0/seconds"]
        for seed in range(4)
    }
    assert len(drawn) == 4
    assert all(10 <= d <= 400 for d in drawn)


def test_a_fault_scenario_replays_identically() -> None:
    scenario, _ = resolve("cascade_frozen_server")
    first = run_scenario(scenario, policy="buggy", seed=5)
    second = run_scenario(scenario, policy="buggy", seed=5)
    assert first.trace == second.trace
    assert first.record.fault_events == second.record.fault_events


def test_sim_mode_refuses_a_server_that_runs_a_command(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = BASE.replace(
        "  ssh: {fake: ssh, timeout: 150}\n",
        f"  ssh: {{command: [python3, -c, \"open('{marker}', 'w')\"]}}\n",
    )
    scenario = parse_scenario(text)
    with pytest.raises(ScenarioError, match="runs a command") as caught:
        run_scenario(scenario, policy="fixed")
    assert caught.value.field == "servers.ssh"
    assert not marker.exists()
