"""Run one seed of an exploration and boil it down to a small, picklable ``SeedResult``.

The same ``SeedRunner`` runs in the exploring process (``--jobs 1``) and, one per process, in
the worker pool: a worker imports the harness and loads the scenario once, then runs many
seeds. Nothing of a passing run is kept (no spans, no events), so memory does not grow with the
number of runs. A failing seed is run a second time: sim mode promises the same outcome and
trace for the same seed, so a difference is a harness defect, written to disk with both runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessDefect
from harness.explore.signature import deciding_failure, signature_of

__all__ = ["SeedResult", "SeedRunner", "WorkerConfig", "init_worker", "run_seed"]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What a worker needs to run seeds: everything is plain data, so it pickles."""

    definition: dict[str, Any]
    source: str
    policy: str
    strategy: str
    defects_dir: str
    recheck: bool = True


@dataclass(frozen=True, slots=True)
class SeedResult:
    """One seed's result: did it fail, how, and was it reproducible."""

    seed: int
    failed: bool
    oracle: str | None = None
    signature: str | None = None
    explanation: str | None = None
    outcome: str = "held"
    # The runtime under test failed (outcome "error"): neither a hit nor a pass.
    error: str | None = None
    # Set when the re-run of a failing seed differed: where both runs were written.
    nondeterministic: str | None = None
    difference: str | None = None


class SeedRunner:
    """Runs seeds of one scenario under one policy and strategy."""

    def __init__(self, config: WorkerConfig) -> None:
        from harness.scenarios import Scenario

        self.config = config
        self.scenario = Scenario.model_validate(config.definition)

    def run(self, seed: int) -> SeedResult:
        first = self._run(seed)
        if first.outcome == "error":
            return SeedResult(seed=seed, failed=False, outcome="error", error=first.error)
        deciding = deciding_failure(first.verdicts, self.scenario.expect.buggy)
        if deciding is None and not first.record.hung:
            return SeedResult(seed=seed, failed=False, outcome=first.outcome)
        oracle = deciding.name if deciding else "hung"
        result = SeedResult(
            seed=seed,
            failed=True,
            oracle=oracle,
            signature=signature_of(first.verdicts, deciding) if deciding else "hung",
            explanation=deciding.explanation if deciding else "the run hung",
            outcome=first.outcome,
        )
        if not self.config.recheck:
            return result
        second = self._run(seed)
        difference = _difference(first, second)
        if difference is None:
            return result
        from harness.scenarios import write_run

        where = Path(self.config.defects_dir) / f"{self.scenario.name}-{first.policy}-s{seed}"
        write_run(first, self.scenario, where / "first")
        write_run(second, self.scenario, where / "second")
        return SeedResult(
            seed=seed,
            failed=True,
            oracle=oracle,
            signature=result.signature,
            explanation=result.explanation,
            outcome=first.outcome,
            nondeterministic=str(where),
            difference=difference,
        )

    def _run(self, seed: int) -> Any:
        """One sim run of ``seed``. A run cut short by Ctrl-C (or SIGTERM) is no result: it
        must count neither as a failure nor as a difference between two runs of one seed."""
        from harness.scenarios import run_scenario

        outcome = run_scenario(
            self.scenario,
            policy=self.config.policy,  # type: ignore[arg-type]
            seed=seed,
            strategy=self.config.strategy,
            source=self.config.source,
        )
        if outcome.interrupted:
            raise KeyboardInterrupt
        return outcome


def _fingerprint(outcome: Any) -> dict[str, str]:
    trace = json.dumps(outcome.trace, sort_keys=True, separators=(",", ":"))
    return {
        "outcome": outcome.outcome,
        "schedule": str(outcome.stats.get("step_hash")),
        "trace": hashlib.sha256(trace.encode()).hexdigest()[:16],
    }


def _difference(first: Any, second: Any) -> str | None:
    """What differs between two runs of one seed (None: nothing), in one line."""
    a, b = _fingerprint(first), _fingerprint(second)
    changed = [f"{key}: {a[key]} then {b[key]}" for key in a if a[key] != b[key]]
    word = {True: "holds", False: "fails"}
    changed += [
        f"{x.name}: {word[x.holds]} then {word[y.holds]}"
        for x, y in zip(first.verdicts, second.verdicts, strict=True)
        if x.holds != y.holds
    ]
    return "; ".join(changed) or None


_RUNNER: SeedRunner | None = None


def init_worker(config: WorkerConfig) -> None:
    """Pool initializer: load the scenario once per worker process. The fork server runs
    with SIGTERM ignored (only the exploring process answers a signal to the group); the
    pool stops its workers with SIGTERM, so a worker takes it back."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    global _RUNNER
    _RUNNER = SeedRunner(config)


def run_seed(seed: int) -> SeedResult:
    """Pool task: run one seed on this worker's runner."""
    if _RUNNER is None:
        raise HarnessDefect("init_worker() was not called in this process")
    return _RUNNER.run(seed)
