"""Leaks: many runs under kill, freeze, reset and drop faults leave nothing behind.

After each run this process holds no more child processes (zombies included, orphans too:
the test process is their subreaper), file descriptors, sockets, threads or pending asyncio
tasks than after a warm-up run (which creates the process-wide singletons: the span router,
imported SDK state). Live runs are real (stdio subprocesses behind the interposer, a
streamable HTTP server behind the TCP proxy, the fake API on loopback); sim runs apply the
same fault plans in process.

``HARNESS_RELIABILITY_RUNS`` sets the number of live runs (default 12: a live run starts at
least two Python processes per server generation, about 0.5-3 s on a shared 2-core machine);
``HARNESS_RELIABILITY_SIM_RUNS`` the number of sim runs (default 200).
"""

from __future__ import annotations

from collections import Counter
from itertools import cycle, islice
from typing import Any

import pytest

from harness.scenarios import load_scenario, run_scenario
from harness.scenarios.live import run_scenario_live
from harness.scenarios.model import Scenario
from tests.reliability._resources import leaks, snapshot
from tests.reliability.conftest import SCENARIOS, reliability_runs

pytestmark = pytest.mark.integration

FIXTURES = ("leak_kill", "leak_freeze", "leak_reset", "leak_drop")
LIVE_RUNS = reliability_runs(12)
SIM_RUNS = reliability_runs(200, name="HARNESS_RELIABILITY_SIM_RUNS")
# Scenario seconds per real second: a 30 s call timeout is 0.3 s.
TIME_SCALE = 0.01


_SCENARIOS = {name: load_scenario(SCENARIOS / f"{name}.yaml") for name in FIXTURES}


def _plan(runs: int) -> list[tuple[str, str, int]]:
    """``runs`` (fixture, policy, seed) triples: every fixture under ``fixed``, then under
    ``buggy``, then the same with the next seed (any four runs cover every fault type)."""
    combos = [(name, policy) for policy in ("fixed", "buggy") for name in FIXTURES]
    return [
        (name, policy, index // len(combos))
        for index, (name, policy) in enumerate(islice(cycle(combos), runs))
    ]


def _injected(outcome: Any) -> Counter[str]:
    """Faults that acted in the run, by plan entry type (``toxic`` counts its resets)."""
    acted = {"applied", "reset", "fired", "killed", "frozen", "dropped"}
    types = {f.label: f.type for f in _SCENARIOS[outcome.scenario].faults}
    count: Counter[str] = Counter()
    for event in outcome.record.fault_events:
        if event.get("action") in acted:
            count[types.get(str(event.get("name")), "other")] += 1
    return count


def _run_and_account(run: Any, plan: list[tuple[str, str, int]]) -> Counter[str]:
    scenarios = _SCENARIOS
    warm_name, warm_policy, _ = plan[0]
    run(scenarios[warm_name], warm_policy, 0)
    baseline = snapshot()
    injected: Counter[str] = Counter()
    for name, policy, seed in plan:
        outcome = run(scenarios[name], policy, seed)
        after = snapshot()
        where = f"{name} ({policy}, seed {seed})"
        assert leaks(baseline, after) == [], f"{where} left resources behind"
        assert not outcome.record.hung, f"{where} hung: {outcome.record.pending}"
        assert outcome.record.leaked == [], f"{where}: {outcome.record.leaked}"
        faults = _injected(outcome)
        assert faults, f"{where}: no fault acted ({outcome.record.fault_events})"
        injected += faults
    return injected


@pytest.mark.timeout(60 + 8 * LIVE_RUNS)
def test_live_runs_under_faults_leave_nothing_behind(reaper: None) -> None:
    def run(scenario: Scenario, policy: Any, seed: int) -> Any:
        return run_scenario_live(scenario, policy=policy, seed=seed, time_scale=TIME_SCALE)

    injected = _run_and_account(run, _plan(LIVE_RUNS))
    print(f"\n{LIVE_RUNS} live runs, faults acted: {dict(injected)}")
    assert set(injected) == {"kill", "freeze", "toxic", "drop"} or len(FIXTURES) > LIVE_RUNS


@pytest.mark.timeout(60 + 1 * SIM_RUNS)
def test_sim_runs_under_faults_leave_no_task_or_thread(reaper: None) -> None:
    def run(scenario: Scenario, policy: Any, seed: int) -> Any:
        return run_scenario(scenario, policy=policy, seed=seed)

    injected = _run_and_account(run, _plan(SIM_RUNS))
    print(f"\n{SIM_RUNS} sim runs, faults acted: {dict(injected)}")
    assert set(injected) == {"kill", "freeze", "toxic", "drop"} or len(FIXTURES) > SIM_RUNS
