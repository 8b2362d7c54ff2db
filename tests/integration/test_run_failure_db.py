"""``harness run`` replays the failing seeds an exploration stored before the asked-for seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.explore import FailureDB, FailureEntry
from harness.scenarios import resolve

# Each test starts harness several times (a few seconds each idle, up to a minute on a busy
# 2-core machine): the per-test timeout is a hang guard, not a bound on the machine's speed.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _stdout(cwd: Path, *extra: str) -> str:
    """What ``harness run cascade_random --policy buggy`` prints in ``cwd``."""
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "cascade_random", "--policy", "buggy",
         "--out", str(cwd / "runs"), *extra],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    return done.stdout


def _run(cwd: Path, *extra: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in _stdout(cwd, "--json", *extra).splitlines()]


def _store_failing_seed_13(cwd: Path) -> None:
    """A failure database in ``cwd`` holding seed 13 of cascade_random under buggy."""
    scenario, _ = resolve("cascade_random")
    entry = FailureEntry(
        policy="buggy", strategy="fifo", seed=13, oracle="no_reconnect_while_in_flight",
        signature="x", replay="harness run cascade_random --policy buggy --seed 13",
    )  # fmt: skip
    FailureDB(cwd / ".harness" / "failures").add(scenario.content_hash(), scenario.name, [entry])


def test_stored_failing_seeds_run_first(tmp_path: Path) -> None:
    _store_failing_seed_13(tmp_path)
    runs = _run(tmp_path)
    assert [r["seed"] for r in runs] == [13, 0]
    assert runs[0]["outcome"] == "reproduced"
    # --no-failure-db runs the asked-for seed alone, as an explicit --seed does.
    assert [r["seed"] for r in _run(tmp_path, "--no-failure-db")] == [0]
    assert [r["seed"] for r in _run(tmp_path, "--seed", "13")] == [13]


def test_the_table_names_each_rows_seed(tmp_path: Path) -> None:
    _store_failing_seed_13(tmp_path)
    header, *rows = _stdout(tmp_path).split("\n\n")[0].splitlines()
    assert header.split()[:3] == ["scenario", "policy", "seed"]
    assert [row.split()[2] for row in rows] == ["13", "0"]


def test_an_explicit_seed_runs_that_seed_only(tmp_path: Path) -> None:
    _store_failing_seed_13(tmp_path)
    assert [r["seed"] for r in _run(tmp_path, "--seed", "7")] == [7]
    assert [r["seed"] for r in _run(tmp_path, "--seed", "0")] == [0]


def test_stored_failing_seeds_also_run_under_fixed(tmp_path: Path) -> None:
    _store_failing_seed_13(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "cascade_random", "--policy", "fixed",
         "--out", str(tmp_path / "runs"), "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    runs = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["seed"], r["policy"], r["outcome"]) for r in runs] == [
        (13, "fixed", "held"),
        (0, "fixed", "held"),
    ]
