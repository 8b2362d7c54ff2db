"""Hangs: a server frozen for good, a Messages API that never answers, a proxy whose
``timeout`` toxic of 0 holds every byte. Nothing in the run ends by itself (call timeouts are
far beyond the budget), so each run must end by its watchdog (the scenario's budget: virtual
in sim, wall in live), be reported as hung with what was pending, and leave nothing behind.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.scenarios import load_scenario, run_scenario
from harness.scenarios.live import run_scenario_live
from tests.reliability._resources import leaks, snapshot
from tests.reliability.conftest import SCENARIOS

pytestmark = pytest.mark.integration

# Scenario file -> what the sim watchdog's report of pending tasks must name.
HANGS = {
    "hang_frozen_server": "MCPHostManager.call_tool",
    "hang_silent_api": "FakeAnthropic._answer",
    "hang_proxy_timeout": "Timeout.pipe",
}


def _judged_hung(outcome: Any) -> None:
    assert outcome.record.hung, "the run was not reported as hung"
    verdicts = {v.name: v for v in outcome.verdicts}
    assert not verdicts["agents_completed"].holds
    assert not verdicts["all_calls_resolved"].holds
    assert "hung" in verdicts["all_calls_resolved"].explanation


@pytest.mark.parametrize("name", sorted(HANGS))
def test_sim_run_ends_by_its_watchdog(name: str, reaper: None) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    run_scenario(scenario, policy="fixed", seed=0)  # warm-up: process-wide singletons
    before = snapshot()
    outcome = run_scenario(scenario, policy="fixed", seed=0)
    _judged_hung(outcome)
    pending = outcome.record.pending
    assert any(HANGS[name] in task for task in pending), pending
    assert leaks(before, snapshot()) == []


@pytest.mark.parametrize("name", sorted(HANGS))
def test_live_run_ends_by_its_watchdog(name: str, reaper: None) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    before = snapshot()
    outcome = run_scenario_live(scenario, policy="fixed", seed=0, time_scale=0.01)
    _judged_hung(outcome)
    # Hung in the scenario, or already while its servers started (a proxy holding every byte
    # holds the handshake too).
    pending = outcome.record.pending
    assert "agent main still running" in pending or any(
        p.startswith("servers still starting") for p in pending
    ), pending
    assert outcome.record.leaked == []
    assert leaks(before, snapshot()) == []


def test_live_hung_run_names_the_call_in_flight(reaper: None) -> None:
    scenario = load_scenario(SCENARIOS / "hang_frozen_server.yaml")
    outcome = run_scenario_live(scenario, policy="fixed", seed=0, time_scale=0.01)
    assert outcome.record.hung
    assert any("in flight on ssh" in p for p in outcome.record.pending), outcome.record.pending


def test_the_results_table_row_of_a_hung_sim_run_says_hung(tmp_path: Any, reaper: None) -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    def row(target: str) -> str:
        args = ["run", target, "--policy", "fixed", "--seed", "0", "--out", str(tmp_path)]
        result = CliRunner().invoke(cli, args)
        name = target.rsplit("/", 1)[-1].removesuffix(".yaml")
        return next(line for line in result.output.splitlines() if line.startswith(name))

    hung = row(str(SCENARIOS / "hang_frozen_server.yaml"))
    assert ", hung" in hung, hung
    assert ", hung" not in row("cascade")
