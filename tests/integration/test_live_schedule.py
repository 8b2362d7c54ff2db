"""Live mode never gives a verdict on a schedule that did not fit: a time scale that cannot fit
it is refused up front, and a run whose scheduled tasks did not fire is inconclusive, with the
reason. Server start-up is reported apart from the scenario's clock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenarios import live as live_mode
from harness.scenarios import parse_scenario, resolve
from harness.scenarios.live import run_scenario_live

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_a_time_scale_that_cannot_fit_the_schedule_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    args = ["run", "scope_leak", "--mode", "live", "--time-scale", "0.01"]
    done = subprocess.run(
        [sys.executable, "-m", "harness", *args, "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: field '--time-scale': ")
    assert "schedule reaches 46800 s (task blog_review)" in done.stderr
    assert "468 s of real time" in done.stderr
    assert "--time-scale 0.00032 or less" in done.stderr
    assert not (tmp_path / "runs").exists()  # nothing ran


_LATE_TASK = """\
name: late_task
description: A scheduled task the wall budget cannot reach.
runtime:
  agents: {reviewer: {system: You review.}}
  main_agent: reviewer
  scheduled:
    - {name: review, at: 300, agent: reviewer, context_id: General, prompt: Review.}
oracles: [agents_completed]
expect: {buggy: [agents_completed]}
budget: {virtual: 400, wall: 2}
model:
  agents:
    reviewer: {turns: [{text: done}]}
"""


@pytest.mark.parametrize("policy", ["buggy", "fixed"])
def test_a_run_whose_schedule_did_not_fit_is_inconclusive_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    # The guard up front is taken away: the verdict must still not pretend.
    monkeypatch.setattr(live_mode, "check_time_scale", lambda *_, **__: None)
    scenario = parse_scenario(_LATE_TASK)
    outcome = run_scenario_live(scenario, policy=policy, time_scale=0.01)  # type: ignore[arg-type]
    assert outcome.record.hung
    assert outcome.outcome == "inconclusive"
    assert not outcome.met
    assert outcome.deciding is not None
    assert outcome.deciding.status == "cannot judge"
    assert "the schedule did not fit: task review (at 300 s) had not fired" in (
        outcome.deciding.explanation
    )


def test_server_start_up_is_not_scenario_time() -> None:
    scenario, _ = resolve("cascade")
    outcome = run_scenario_live(scenario, policy="buggy", time_scale=0.01)
    assert outcome.outcome == "reproduced"
    assert outcome.stats["startup_s"] > 0
    [bad] = [e for e in outcome.record.runtime("reconnect") if e["in_flight"] > 0][:1]
    # The call started near 0 s on the scenario's clock and timed out 150 s later; before the
    # clock left start-up out, the spawn of a Python server (seconds of real time, hundreds of
    # scenario seconds at this scale) came first.
    assert 150 <= bad["time"] < 150 + 0.5 * outcome.stats["startup_s"] / 0.01
    names = {s["name"] for s in outcome.record.spans}
    assert "harness.start_up" in names
    assert len({s["trace_id"] for s in outcome.record.spans}) == 1
