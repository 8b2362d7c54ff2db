"""Leaks: many runs under kill, freeze, reset and drop faults leave nothing behind.

After each run the process that made it holds no more child processes (zombies included,
orphans too: that process is their subreaper), file descriptors, sockets, threads or pending
asyncio tasks than after a warm-up run (which creates the process-wide singletons: the span
router, imported SDK state). Live runs are real (stdio subprocesses behind the interposer, a
streamable HTTP server behind the TCP proxy, the fake API on loopback); sim runs apply the
same fault plans in process.

Live runs cost about 2 s each (every server generation starts Python processes), so they run
in two worker processes side by side (``tests/reliability/_leak_runs.py``), each accounting for
its own runs. ``HARNESS_RELIABILITY_RUNS`` sets the number of live runs (default 200),
``HARNESS_RELIABILITY_SIM_RUNS`` the number of sim runs (default 200).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.scenarios import run_scenario
from harness.scenarios.model import Scenario
from tests.reliability._leak_runs import load_fixtures, plan, run_and_account
from tests.reliability._resources import descendants
from tests.reliability.conftest import reliability_runs

pytestmark = pytest.mark.integration

LIVE_RUNS = reliability_runs(200)
SIM_RUNS = reliability_runs(200, name="HARNESS_RELIABILITY_SIM_RUNS")
WORKERS = 2
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120 + 3 * LIVE_RUNS)
def test_live_runs_under_faults_leave_nothing_behind(reaper: None) -> None:
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.reliability._leak_runs",
                "--runs",
                str(LIVE_RUNS),
                "--shard",
                f"{i}/{WORKERS}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WORKERS)
    ]
    reports: list[dict[str, Any]] = []
    for worker in workers:
        out, err = worker.communicate(timeout=60 + 3 * LIVE_RUNS)
        lines = out.strip().splitlines()
        assert lines, f"a leak worker said nothing (exit {worker.returncode}): {err[-2000:]}"
        reports.append(json.loads(lines[-1]))
    errors = [r["error"] for r in reports if "error" in r]
    assert errors == []
    assert all(w.returncode == 0 for w in workers)
    assert sum(r["runs"] for r in reports) == LIVE_RUNS
    injected: Counter[str] = sum((Counter(r["injected"]) for r in reports), Counter())
    # The workers are gone and left nothing for this process (their subreaper) to adopt.
    assert descendants() == []
    print(f"\n{LIVE_RUNS} live runs in {WORKERS} workers, faults acted: {dict(injected)}")
    assert set(injected) == {"kill", "freeze", "toxic", "drop"} or LIVE_RUNS < 8


@pytest.mark.timeout(60 + 1 * SIM_RUNS)
def test_sim_runs_under_faults_leave_no_task_or_thread(reaper: None) -> None:
    def run(scenario: Scenario, policy: Any, seed: int) -> Any:
        return run_scenario(scenario, policy=policy, seed=seed)

    injected = run_and_account(run, plan(SIM_RUNS), load_fixtures())
    print(f"\n{SIM_RUNS} sim runs, faults acted: {dict(injected)}")
    assert set(injected) == {"kill", "freeze", "toxic", "drop"} or SIM_RUNS < 8
