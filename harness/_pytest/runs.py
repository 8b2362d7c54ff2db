"""``harness_run``: run a scenario from a test, keep its run directory, explain a failure."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from harness._pytest.spans import SpanQuery

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from harness.oracles import Verdict
    from harness.scenarios import Policy, RunOutcome

__all__ = ["HarnessResult", "RunSettings", "describe", "keep", "run"]

MODES = ("sim", "live")


@dataclass(frozen=True)
class RunSettings:
    """The session's ``--harness-*`` options."""

    seed: int
    seeds: int
    mode: str
    out_dir: Callable[[], Path]
    exporter: Callable[[], SpanExporter | None]
    # Where a failing test's run directories are kept (None: out_dir already lasts).
    kept_dir: Callable[[], Path | None]


class HarnessResult:
    """A judged run: ``outcome`` (reproduced / held / unexpected), ``verdicts``, ``spans``
    (a ``SpanQuery``), ``run_dir`` and the one-line ``replay`` command."""

    def __init__(
        self, run: RunOutcome, *, on_failure: Callable[[RunOutcome], None] | None = None
    ) -> None:
        from harness.telemetry.otlp_json import flatten

        self.run = run
        self._on_failure = on_failure
        self._spans = flatten(run.trace)
        self.spans = SpanQuery(lambda: self._spans)

    scenario = property(lambda self: self.run.scenario)
    policy = property(lambda self: self.run.policy)
    seed = property(lambda self: self.run.seed)
    outcome = property(lambda self: self.run.outcome)
    expected = property(lambda self: self.run.expected)
    met = property(lambda self: self.run.met)
    deciding = property(lambda self: self.run.deciding)
    trace = property(lambda self: self.run.trace)

    @property
    def verdicts(self) -> dict[str, Verdict]:
        """Oracle verdicts by oracle name (in the scenario's order)."""
        return {v.name: v for v in self.run.verdicts}

    @property
    def run_dir(self) -> Path:
        assert self.run.run_dir is not None
        return self.run.run_dir

    @property
    def replay(self) -> str:
        return f"harness replay {self.run_dir}"

    def assert_expected(self) -> None:
        """Fail (with the deciding oracle's sentence) unless the run met its expectation."""
        if not self.met:
            if self._on_failure is not None:
                self._on_failure(self.run)  # keep the run where it lasts, then name it
            raise AssertionError(describe(self.run))

    def __repr__(self) -> str:
        return (
            f"<HarnessResult {self.scenario} {self.policy} seed={self.seed}: {self.outcome} "
            f"(expected {self.expected})>"
        )


def describe(run: RunOutcome) -> str:
    """The ``harness`` report section of a run: seed, deciding oracle and evidence, run
    directory and the replay commands."""
    lines = [
        f"scenario: {run.scenario}  policy: {run.policy}  seed: {run.seed}  mode: "
        f"{run.record.mode}",
        f"outcome: {run.outcome} (expected {run.expected})",
    ]
    if run.error is not None:
        lines.append(f"error: {run.error}")
    if run.deciding is not None:
        verdict = run.deciding.status
        lines.append(f"deciding oracle: {run.deciding.name} ({verdict})")
        lines.append(f"  {run.deciding.explanation}")
        for item in run.deciding.evidence[:10]:
            lines.append(f"  - {item}")
        if len(run.deciding.evidence) > 10:
            lines.append(f"  ... {len(run.deciding.evidence) - 10} more")
    failing = [v.name for v in run.verdicts if v.fails]
    if failing:
        lines.append(f"failing oracles: {', '.join(failing)}")
    if run.draws:
        lines.append(f"draws: {run.draws}")
    lines.append(f"run directory: {run.run_dir}")
    lines.append(f"replay: harness replay {run.run_dir}")
    lines.append(f"   or: {run.replay_command()}")
    return "\n".join(lines)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "test"


def keep(run: RunOutcome, kept_root: Path | None, nodeid: str) -> None:
    """Copy a failing test's run directory under ``kept_root`` (replacing an older copy of
    the same run) and point the run at the copy, which outlives pytest's temporary
    directories: the replay line in the report stays valid."""
    if kept_root is None or run.run_dir is None:
        return
    root = (kept_root / _safe(nodeid)).resolve()
    if root in run.run_dir.resolve().parents:
        return
    target = root / run.run_dir.name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(run.run_dir, target)
    run.run_dir = target


def run_root(out: Path, nodeid: str, worker: str | None) -> Path:
    """Where a test's run directories go: one folder per test (and per xdist worker)."""
    root = out / worker if worker else out
    return root / _safe(nodeid)


def run(
    target: str | Path,
    *,
    policy: str,
    seed: int,
    mode: str,
    root: Path,
    exporter: SpanExporter | None,
) -> RunOutcome:
    """Run ``target`` (built-in name or scenario file), write its run directory under
    ``root``, send it to the collector when one is configured."""
    from harness.errors import ConfigError
    from harness.scenarios import resolve, run_scenario, write_run

    if policy not in ("buggy", "fixed"):
        raise ConfigError("policy must be 'buggy' or 'fixed'", field="policy", value=policy)
    if mode not in MODES:
        raise ConfigError("mode must be 'sim' or 'live'", field="mode", value=mode)
    chosen = cast("Policy", policy)
    scenario, source = resolve(str(target))
    if mode == "live":
        from harness.scenarios.live import run_scenario_live

        outcome = run_scenario_live(scenario, policy=chosen, seed=seed, source=source)
    else:
        outcome = run_scenario(scenario, policy=chosen, seed=seed, source=source)
    if outcome.interrupted:
        raise KeyboardInterrupt  # Ctrl-C stops the test session, as anywhere else in pytest
    write_run(outcome, scenario, root)
    if exporter is not None:
        import time

        from harness.telemetry.export import export_traces_data
        from harness.telemetry.timeshift import shift_to_now

        # Moved to end now, as harness run exports: Jaeger's default search finds it.
        export_traces_data(shift_to_now(outcome.trace, time.time_ns()), exporter)
    return outcome
