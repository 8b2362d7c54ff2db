"""Scenario files collected as test items (``--harness-scenarios DIR``): one item per scenario
and policy, passing when the scenario's expectation holds for every seed asked for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness._pytest.keys import RUNS_KEY, SETTINGS_KEY, worker_id
from harness._pytest.runs import describe, run, run_root
from harness.errors import RuntimeFailure

if TYPE_CHECKING:
    from harness.scenarios import RunOutcome

__all__ = ["ScenarioFile", "ScenarioItem", "ScenarioUnmet"]

POLICIES = ("buggy", "fixed")


class ScenarioUnmet(RuntimeFailure):
    """A scenario run did not meet its expectation (bug not reproduced, or fix not holding)."""

    def __init__(self, outcome: RunOutcome, seeds_run: int) -> None:
        super().__init__(describe(outcome))
        self.outcome = outcome
        self.seeds_run = seeds_run


class ScenarioFile(pytest.File):
    """A scenario YAML file; its items are ``<scenario>[buggy]`` and ``<scenario>[fixed]``."""

    def collect(self) -> Iterator[pytest.Item]:
        from harness.scenarios import load_scenario

        scenario = load_scenario(self.path)
        for policy in POLICIES:
            yield ScenarioItem.from_parent(self, name=f"{scenario.name}[{policy}]", policy=policy)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from harness.errors import HarnessError

        if isinstance(excinfo.value, HarnessError):
            return f"error: {excinfo.value}"
        return super().repr_failure(excinfo)


class ScenarioItem(pytest.Item):
    """Runs its scenario under one policy over ``--harness-seeds`` seeds, from
    ``--harness-seed``; fails at the first seed whose outcome is not the expected one."""

    def __init__(self, *, policy: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.add_marker(pytest.mark.harness_scenario)

    def runtest(self) -> None:
        settings = self.config.stash[SETTINGS_KEY]
        root = run_root(settings.out_dir(), self.nodeid, worker_id(self.config))
        outcomes = []
        for seed in range(settings.seed, settings.seed + settings.seeds):
            outcome = run(
                self.path,
                policy=self.policy,
                seed=seed,
                mode=settings.mode,
                root=root,
                exporter=settings.exporter(),
            )
            outcomes.append(outcome)
            self.stash[RUNS_KEY] = outcomes
            if not outcome.met:
                raise ScenarioUnmet(outcome, len(outcomes))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from harness.errors import HarnessError

        if isinstance(excinfo.value, ScenarioUnmet):
            outcome = excinfo.value.outcome
            why = outcome.deciding.explanation if outcome.deciding else ""
            return (
                f"{outcome.scenario} ({outcome.policy}, seed {outcome.seed}, run "
                f"{excinfo.value.seeds_run} of this item): expected {outcome.expected}, "
                f"got {outcome.outcome}. {why}\n(see the 'harness' section)"
            )
        if isinstance(excinfo.value, HarnessError):
            return f"error: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario {self.name}"
