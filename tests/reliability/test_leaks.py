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
import queue
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.scenarios import run_scenario
from harness.scenarios.model import Scenario
from tests._load import scaled
from tests.reliability._leak_runs import load_fixtures, plan, run_and_account
from tests.reliability._resources import descendants, kill_and_reap
from tests.reliability.conftest import reliability_runs

pytestmark = pytest.mark.integration

# Five rounds of the eight fixture/policy pairs live, and 100 sim runs, by default (CI's time);
# HARNESS_RELIABILITY_RUNS=200 and HARNESS_RELIABILITY_SIM_RUNS=1000 for the long drill.
LIVE_RUNS = reliability_runs(40)
SIM_RUNS = reliability_runs(100, name="HARNESS_RELIABILITY_SIM_RUNS")
WORKERS = 2
ROOT = Path(__file__).resolve().parents[2]


def _watch(
    workers: list[subprocess.Popen[str]], readers: list[threading.Thread]
) -> list[dict[str, Any]]:
    """Each worker's final report. A worker prints a line per finished run; the test fails
    when no run finishes anywhere for ``STALL_S`` (stretched by the machine's load), not
    after a fixed total (200 live runs take 5 minutes idle, far longer on a busy machine)."""
    lines: queue.Queue[tuple[int, str | None]] = queue.Queue()
    stderr: dict[int, list[str]] = {i: [] for i in range(len(workers))}

    def read_out(index: int) -> None:
        assert workers[index].stdout is not None
        for line in workers[index].stdout:
            lines.put((index, line))
        lines.put((index, None))

    def read_err(index: int) -> None:
        # Drained as it comes: a worker blocked on a full stderr pipe would look stuck.
        assert workers[index].stderr is not None
        stderr[index].extend(workers[index].stderr)

    for index in range(len(workers)):
        for target in (read_out, read_err):
            readers.append(threading.Thread(target=target, args=(index,), daemon=True))
            readers[-1].start()
    reports: dict[int, dict[str, Any]] = {}
    stall = scaled(STALL_S)
    while len(reports) < len(workers):
        try:
            index, line = lines.get(timeout=stall)
        except queue.Empty:
            raise AssertionError(f"no live run finished in {stall:.0f} s") from None
        if line is None:
            reports.setdefault(
                index, {"error": f"worker {index} ended: {''.join(stderr[index])[-2000:]}"}
            )
            continue
        message = json.loads(line)
        if "done" not in message:
            reports[index] = message
    return [reports[i] for i in range(len(workers))]


# A live run takes about 2 s; one that has not finished after a minute is stuck. No total
# limit: the work is bounded by the plan, and a stall is caught on its own.
STALL_S = 60.0


@pytest.mark.slow
@pytest.mark.timeout(0)
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
    readers: list[threading.Thread] = []
    left: list[str] = []
    try:
        reports = _watch(workers, readers)
        for worker in workers:
            worker.wait(timeout=scaled(STALL_S))
    finally:
        # A worker left running would be found by the next test that counts processes, and a
        # pipe left open (or closed under its reader) would warn in the next test.
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
        # What the workers left (orphans adopted by this process) is seen, then ended: it may
        # hold the pipes open, and the readers finish only at their end.
        left = [p.describe() for p in descendants()]
        kill_and_reap(descendants())
        for reader in readers:
            reader.join(timeout=scaled(STALL_S))
        for worker in workers:
            for pipe in (worker.stdout, worker.stderr):
                if pipe is not None:
                    pipe.close()
    errors = [r["error"] for r in reports if "error" in r]
    assert errors == []
    assert all(w.returncode == 0 for w in workers)
    assert sum(r["runs"] for r in reports) == LIVE_RUNS
    injected: Counter[str] = sum((Counter(r["injected"]) for r in reports), Counter())
    # The workers are gone and left nothing for this process (their subreaper) to adopt.
    assert left == []
    print(f"\n{LIVE_RUNS} live runs in {WORKERS} workers, faults acted: {dict(injected)}")
    assert set(injected) == {"kill", "freeze", "toxic", "drop"} or LIVE_RUNS < 8


# No total limit either: 200 sim runs took 466 s on a loaded 2-core machine (a fixed 260 s
# failed there); every run is bounded by its own wall budget, which a watchdog enforces.
@pytest.mark.timeout(0)
def test_sim_runs_under_faults_leave_no_task_or_thread(reaper: None) -> None:
    def run(scenario: Scenario, policy: Any, seed: int) -> Any:
        return run_scenario(scenario, policy=policy, seed=seed)

    injected = run_and_account(run, plan(SIM_RUNS), load_fixtures())
    print(f"\n{SIM_RUNS} sim runs, faults acted: {dict(injected)}")
    assert set(injected) == {"kill", "freeze", "toxic", "drop"} or SIM_RUNS < 8
