"""pydantic-ai (a runtime nobody here wrote) in the harness's process, in sim mode, judged by
black-box oracles; skipped where the ``pydantic-ai`` extra is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenarios import run_scenario
from harness.scenarios.model import load_scenario
from harness.telemetry.compare import first_difference
from harness.telemetry.otlp_json import flatten

pytest.importorskip(
    "pydantic_ai", reason="pydantic-ai is not installed (pip install -e '.[pydantic-ai]')"
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pydantic_ai"


@pytest.mark.parametrize("name", ["scope_leak", "cascade"])
def test_pydantic_ai_example_meets_its_expectation_by_seed(name: str) -> None:
    scenario = load_scenario(EXAMPLES / f"{name}.yaml")
    buggy = run_scenario(scenario, policy="buggy", seed=3)
    assert buggy.outcome == "reproduced", [v.to_dict() for v in buggy.verdicts]
    fixed = run_scenario(scenario, policy="fixed", seed=3)
    assert fixed.outcome == "held", [v.to_dict() for v in fixed.verdicts]
    again = run_scenario(scenario, policy="buggy", seed=3)
    assert again.outcome == "reproduced"
    assert again.stats["step_hash"] == buggy.stats["step_hash"]
    assert first_difference(flatten(buggy.trace), flatten(again.trace)) is None


def test_pydantic_ai_never_reconnects_after_its_server_died() -> None:
    scenario = load_scenario(EXAMPLES / "server_kill.yaml")
    outcome = run_scenario(scenario, policy="buggy", seed=3)
    assert outcome.outcome == "reproduced", [v.to_dict() for v in outcome.verdicts]
    verdicts = {v.name: v for v in outcome.verdicts}
    assert "never opened a new connection" in verdicts["reconnected_after_server_death"].explanation
    # One connection, killed; nothing replaced it, so nothing raced.
    assert verdicts["one_reconnect_per_failure"].status == "holds"
    # pydantic-ai gave up (its tool retries spent) and the application said so.
    answer = outcome.record.result["main"]
    answer = answer["text"] if isinstance(answer, dict) else answer
    assert "max retries" in answer
