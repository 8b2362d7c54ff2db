"""Leak runs: a plan of runs under kill, freeze, reset and drop faults, and the accounting after
each run (used in process for sim runs, and by worker processes for live runs).

``python -m tests.reliability._leak_runs --runs N --shard I/K`` makes the live runs of shard
``I`` of ``K`` of an ``N``-run plan in this process, as the subreaper of everything it starts,
and prints a line ``{"done": n}`` after each run, then one JSON line: ``{"runs": n,
"injected": {type: count}}`` or ``{"error": text}``.
Shards run side by side, each with its own accounting: a process's children, descriptors,
sockets and threads are its own, so what one shard's run leaves is seen by that shard.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable
from itertools import cycle, islice
from pathlib import Path
from typing import Any

from harness.scenarios import load_scenario
from harness.scenarios.model import Scenario
from tests.reliability._resources import descendants, kill_and_reap, leaks, snapshot, subreaper

SCENARIOS = Path(__file__).parent / "scenarios"
FIXTURES = ("leak_kill", "leak_freeze", "leak_reset", "leak_drop")
# Scenario seconds per real second: a 30 s call timeout is 0.3 s.
TIME_SCALE = 0.01

Plan = list[tuple[str, str, int]]
RunFn = Callable[[Scenario, Any, int], Any]


def load_fixtures() -> dict[str, Scenario]:
    return {name: load_scenario(SCENARIOS / f"{name}.yaml") for name in FIXTURES}


def plan(runs: int) -> Plan:
    """``runs`` (fixture, policy, seed) triples: every fixture under ``fixed``, then under
    ``buggy``, then the same with the next seed (any eight runs cover every fault type)."""
    combos = [(name, policy) for policy in ("fixed", "buggy") for name in FIXTURES]
    return [
        (name, policy, index // len(combos))
        for index, (name, policy) in enumerate(islice(cycle(combos), runs))
    ]


def injected(outcome: Any, scenarios: dict[str, Scenario]) -> Counter[str]:
    """Faults that acted in the run, by plan entry type (``toxic`` counts its resets)."""
    acted = {"applied", "reset", "fired", "killed", "frozen", "dropped"}
    types = {f.label: f.type for f in scenarios[outcome.scenario].faults}
    count: Counter[str] = Counter()
    for event in outcome.record.fault_events:
        if event.get("kind") in acted:
            count[types.get(str(event.get("name")), "other")] += 1
    return count


def run_and_account(
    run: RunFn,
    runs: Plan,
    scenarios: dict[str, Scenario],
    *,
    progress: Callable[[int], None] | None = None,
) -> Counter[str]:
    """Make every run of ``runs`` after a warm-up run; after each, assert that this process
    holds nothing more than after the warm-up, that the run neither hung nor leaked a
    process, and that a fault acted (``progress`` is told each run's number as it passes).
    Returns the faults that acted, by type."""
    warm_name, warm_policy, _ = runs[0]
    run(scenarios[warm_name], warm_policy, 0)
    baseline = snapshot()
    total: Counter[str] = Counter()
    for number, (name, policy, seed) in enumerate(runs, start=1):
        outcome = run(scenarios[name], policy, seed)
        after = snapshot()
        where = f"{name} ({policy}, seed {seed})"
        assert leaks(baseline, after) == [], (
            f"{where} left resources behind: {leaks(baseline, after)}"
        )
        assert not outcome.record.hung, f"{where} hung: {outcome.record.pending}"
        assert outcome.record.leaked == [], f"{where}: {outcome.record.leaked}"
        faults = injected(outcome, scenarios)
        assert faults, f"{where}: no fault acted ({outcome.record.fault_events})"
        total += faults
        if progress is not None:
            progress(number)
    return total


def live_run(scenario: Scenario, policy: Any, seed: int) -> Any:
    from harness.scenarios.live import run_scenario_live

    return run_scenario_live(scenario, policy=policy, seed=seed, time_scale=TIME_SCALE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="live leak runs of one shard")
    parser.add_argument("--runs", type=int, required=True, help="runs in the whole plan")
    parser.add_argument("--shard", default="0/1", help="I/K: this process makes runs I, I+K, ...")
    args = parser.parse_args(argv)
    index, count = (int(p) for p in args.shard.split("/"))
    runs = plan(args.runs)[index::count]
    if not runs:
        print(json.dumps({"runs": 0, "injected": {}}), flush=True)
        return 0
    with subreaper():
        try:
            total = run_and_account(
                live_run,
                runs,
                load_fixtures(),
                progress=lambda n: print(json.dumps({"done": n}), flush=True),
            )
            report: dict[str, Any] = {"runs": len(runs), "injected": dict(total)}
        except AssertionError as exc:
            report = {"error": str(exc)}
        left = descendants()
        if left:
            report.setdefault("error", f"left running at the end: {[p.describe() for p in left]}")
            kill_and_reap(left)
    print(json.dumps(report), flush=True)
    return 0 if "error" not in report else 1


if __name__ == "__main__":
    sys.exit(main())
