"""Fixtures of the reliability suite: resource accounting around runs, scenario fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability._resources import descendants, kill_and_reap, subreaper

SCENARIOS = Path(__file__).parent / "scenarios"


def reliability_runs(default: int, *, name: str = "HARNESS_RELIABILITY_RUNS") -> int:
    """How many runs a reliability test makes: ``default`` in CI, more locally through the
    environment variable ``name`` (e.g. ``HARNESS_RELIABILITY_RUNS=200``)."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        runs = int(value)
    except ValueError:
        raise pytest.UsageError(f"{name} must be a whole number, got {value!r}") from None
    if runs < 1:
        raise pytest.UsageError(f"{name} must be at least 1, got {runs}")
    return runs


@pytest.fixture
def reaper() -> Iterator[None]:
    """This test process adopts every orphaned descendant, so a process a run leaves behind
    is found even when its parent died; whatever is left at the end is killed and reaped
    (the test itself asserts there is nothing)."""
    with subreaper():
        yield
        leftover = descendants()
        kill_and_reap(leftover)


@pytest.fixture(scope="session")
def saved_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sim run of cascade (buggy) written to its run directory; tests copy it to edit it."""
    from harness.scenarios import resolve, run_scenario, write_run

    scenario, _ = resolve("cascade")
    root = tmp_path_factory.mktemp("saved")
    return write_run(run_scenario(scenario, policy="buggy"), scenario, root)
