"""Exploration end to end in sim mode: failing seeds that fail again alone, the failure database
replayed first, nondeterminism caught, shrinking to a smaller plan that still fails."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.errors import ConfigError
from harness.explore import FailureDB, explore, shrink
from harness.explore.shrink import shrink_run_dir
from harness.oracles import NEEDS, ORACLES, RunRecord, Verdict, oracle
from harness.scenarios import Scenario, load_scenario, resolve, run_scenario, write_run

_flips = itertools.count()


def _flaky(record: RunRecord) -> Verdict:
    """Test only: fails on every other evaluation, as a nondeterministic run would."""
    return Verdict("test_flaky_explore_oracle", next(_flips) % 2 == 1, "flips")


@pytest.fixture
def flaky_oracle() -> Iterator[str]:
    """The flaky oracle, registered for one test only (the registry is the product's: the
    shipped schema lists its oracles, and a test's must not stay in it)."""
    name = "test_flaky_explore_oracle"
    oracle(name)(_flaky)
    try:
        yield name
    finally:
        ORACLES.pop(name, None)
        NEEDS.pop(name, None)


@pytest.mark.parametrize(
    ("name", "runs"),
    [("cascade_random", 60), ("orphaned_tool_block_random", 40), ("scope_leak_random", 60)],
)
def test_randomized_founding_bugs_hit_a_minority_under_buggy_and_never_under_fixed(
    name: str, runs: int
) -> None:
    # Properties, not the seeds' draws: which seeds fail changes with any change of draw order.
    scenario, source = resolve(name)
    buggy = explore(scenario, source=source, runs=runs, policy="buggy")
    assert buggy.runs == runs
    assert 0 < buggy.failures == len(buggy.failing_seeds)
    assert 0 < buggy.hit_rate < 0.5
    low, high = buggy.ci95
    assert 0 < low < buggy.hit_rate < high < 1
    assert buggy.first_failing_seed == min(buggy.failing_seeds)
    assert set(buggy.failing_seeds) <= set(range(runs))
    [signature] = buggy.signatures
    assert signature.count == buggy.failures
    assert signature.seed == buggy.first_failing_seed
    assert signature.oracle in scenario.expect.buggy
    assert signature.replay == (
        f"harness run {name} --policy buggy --seed {signature.seed} --strategy fifo"
    )
    # Every failing seed failed again when explore reran it (else it would be listed here);
    # run alone, the first fails with the same oracle and a seed that passed passes.
    assert buggy.nondeterministic == []
    rerun = run_scenario(scenario, policy="buggy", seed=signature.seed)
    assert rerun.outcome == "reproduced"
    assert signature.oracle in {v.name for v in rerun.verdicts if not v.holds}
    held = next(s for s in range(runs) if s not in buggy.failing_seeds)
    assert run_scenario(scenario, policy="buggy", seed=held).outcome == "held"
    fixed = explore(scenario, source=source, runs=runs, policy="fixed", strategy="random")
    assert (fixed.runs, fixed.failures, fixed.signatures) == (runs, 0, [])


def test_a_seed_without_the_bug_meets_a_sometimes_expectation() -> None:
    scenario, _ = resolve("cascade_random")
    outcomes = [run_scenario(scenario, policy="buggy", seed=s) for s in range(6)]
    assert {o.outcome for o in outcomes} == {"reproduced", "held"}
    assert all(o.met for o in outcomes)
    assert all(o.draws and o.to_json()["draws"] == o.draws for o in outcomes)


def test_failing_seeds_are_stored_and_replayed_first(tmp_path: Path) -> None:
    scenario, source = resolve("cascade_random")
    db = FailureDB(tmp_path / "failures")
    first = explore(scenario, source=source, runs=20, policy="buggy", db=db)
    stored = db.seeds(scenario.content_hash(), policy="buggy", strategy="fifo")
    assert stored
    assert stored[0] == first.first_failing_seed
    assert len(stored) == first.failures
    later = explore(scenario, source=source, runs=5, first_seed=1000, policy="buggy", db=db)
    assert [row["seed"] for row in later.replayed] == stored
    assert all(row["fails"] for row in later.replayed)
    assert later.runs == 5


def test_a_nondeterministic_failure_is_reported_as_a_harness_defect(
    tmp_path: Path, flaky_oracle: str
) -> None:
    base, _ = resolve("cascade_random")
    data = base.model_dump(mode="json")
    data["oracles"] = [*data["oracles"], "test_flaky_explore_oracle"]
    scenario = Scenario.model_validate(data)
    report = explore(
        scenario,
        source="flaky",
        runs=2,
        policy="fixed",
        db=FailureDB(tmp_path / "failures"),
        defects_dir=tmp_path / "defects",
    )
    assert report.failures == 2
    assert [row["seed"] for row in report.nondeterministic] == [0, 1]
    difference = report.nondeterministic[0]["difference"]
    assert (
        difference == "outcome: unexpected then held; test_flaky_explore_oracle: fails then holds"
    )
    kept = Path(report.nondeterministic[0]["runs"])
    assert sorted(p.name for p in kept.iterdir()) == ["first", "second"]
    assert len(list(kept.glob("*/*/trace.jsonl"))) == 2
    # A nondeterministic seed is not a reproducible failure: it is not stored for replay.
    assert FailureDB(tmp_path / "failures").entries(scenario.content_hash()) == []


def test_shrinking_gives_a_simpler_plan_that_still_fails(tmp_path: Path) -> None:
    scenario, _ = resolve("cascade_random")
    seed = 0
    before = run_scenario(scenario, policy="buggy", seed=seed)
    assert before.outcome == "reproduced"
    result = shrink(
        scenario,
        policy="buggy",
        seed=seed,
        oracle="no_reconnect_while_in_flight",
        strategy="random",
        out_dir=tmp_path,
    )
    assert result.strategy == "fifo"
    assert result.faults_after <= result.faults_before
    assert result.faults_after <= 2
    assert result.steps
    assert result.draws != result.original_draws
    b_latency = "/model/agents/B/turns/0/latency"
    assert result.draws[b_latency] <= result.original_draws[b_latency]
    again = run_scenario(scenario, policy="buggy", seed=seed, overrides=result.draws)
    assert not next(v for v in again.verdicts if v.name == "no_reconnect_while_in_flight").holds
    # The minimal scenario file has fixed values only and fails on its own.
    assert result.path is not None
    minimal = load_scenario(result.path)
    assert minimal.distributions == {}
    assert "distributions" not in yaml.safe_load(result.path.read_text())
    replayed = run_scenario(minimal, policy="buggy", seed=seed)
    assert replayed.outcome == "reproduced"
    assert result.replay.endswith(f"--policy buggy --seed {seed} --strategy fifo")


def test_shrinking_is_deterministic() -> None:
    scenario, _ = resolve("orphaned_tool_block_random")
    runs = [shrink(scenario, policy="buggy", seed=0, oracle="tool_pairing_valid") for _ in range(2)]
    assert runs[0].draws == runs[1].draws
    assert runs[0].steps == runs[1].steps
    assert run_scenario(scenario, policy="buggy", seed=0, overrides=runs[0].draws).outcome == (
        "reproduced"
    )


def test_a_saved_failing_run_directory_can_be_shrunk(tmp_path: Path) -> None:
    scenario, source = resolve("cascade_random")
    outcome = run_scenario(scenario, policy="buggy", seed=13, strategy="random", source=source)
    assert outcome.outcome == "reproduced"
    run_dir = write_run(outcome, scenario, tmp_path / "runs")
    result = shrink_run_dir(run_dir, out_dir=tmp_path / "shrunk")
    assert (result.seed, result.policy, result.original_strategy) == (13, "buggy", "random")
    assert result.oracle == "no_reconnect_while_in_flight"
    assert result.path is not None
    minimal = run_scenario(load_scenario(result.path), policy="buggy", seed=13)
    assert minimal.outcome == "reproduced"
    passing = write_run(run_scenario(scenario, policy="fixed", seed=13), scenario, tmp_path / "ok")
    with pytest.raises(ConfigError, match="did not fail"):
        shrink_run_dir(passing)


def test_a_spent_time_budget_stops_starting_seeds() -> None:
    scenario, source = resolve("cascade_random")
    report = explore(scenario, source=source, runs=50, time_budget=1e-9)
    assert report.stopped_by_time_budget
    assert report.runs < 50
    assert report.to_json()["runs"] == report.runs


@pytest.mark.parametrize(
    "fault",
    [{"kind": "overloaded"}, {"kind": "api_error"}, {"kind": "connection_drop"}],
    ids=lambda f: f["kind"],
)
def test_an_api_fault_without_retry_after_replays_identically(fault: dict[str, str]) -> None:
    base, _ = resolve("cascade_random")
    data = base.model_dump(mode="json")
    data["distributions"] = {}
    data["model"]["agents"]["main"]["turns"][0]["fail"] = [fault]
    scenario = Scenario.model_validate(data)
    waits = set()
    for seed in range(3):
        first = run_scenario(scenario, policy="fixed", seed=seed)
        again = run_scenario(scenario, policy="fixed", seed=seed)
        assert first.virtual_s == again.virtual_s
        assert first.stats["step_hash"] == again.stats["step_hash"]
        [retry] = [e for e in first.record.runtime("llm_retry") if e["agent"] == "main"]
        assert (retry["attempt"], retry["retry_after"]) == (1, None)
        assert retry in again.record.runtime("llm_retry")
        waits.add(retry["delay"])
    # The backoff jitter is drawn from the seed: different seeds wait differently.
    assert len(waits) == 3


def _cascade_tie() -> Scenario:
    """The cascade with B's call starting at the very instant A's call times out (150 s)."""
    base, _ = resolve("cascade")
    data = base.model_dump(mode="json")
    data["name"] = "cascade_tie"
    data["model"]["agents"]["B"]["turns"][0]["latency"] = 150
    return Scenario.model_validate(data)


@pytest.mark.parametrize(
    ("strategy", "in_flight_teardowns"), [("fifo", 0), ("random", 11), ("pct", 10)]
)
def test_scheduling_strategies_reach_interleavings_fifo_never_runs(
    strategy: str, in_flight_teardowns: int
) -> None:
    scenario = _cascade_tie()
    buggy = explore(scenario, source="cascade_tie", runs=30, strategy=strategy)
    counts = {s.oracle: s.count for s in buggy.signatures}
    assert counts.get("no_reconnect_while_in_flight", 0) == in_flight_teardowns
    assert buggy.nondeterministic == []
    fixed = explore(scenario, source="cascade_tie", runs=30, strategy=strategy, policy="fixed")
    assert fixed.failures == 0
