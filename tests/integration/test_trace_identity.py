"""Every run has its own trace: ids are derived from what identifies the run, so runs pushed
to one collector never merge, and the same run gives the same ids again (replay compares them)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.scenarios import builtin_names, resolve, run_scenario
from harness.scenarios.cli import run_cmd
from harness.telemetry.otlp_json import flatten
from tests.integration._otlp import Received

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
def test_run_all_pushed_to_a_collector_gives_one_trace_per_row(
    tmp_path: Path, grpc_receiver: tuple[str, Received]
) -> None:
    url, received = grpc_receiver
    args = ["--all", "--out", str(tmp_path), "--no-failure-db", "--json"]
    args += ["--otlp-endpoint", url, "--otlp-protocol", "grpc"]
    result = CliRunner().invoke(run_cmd, args)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("{")]
    assert len(rows) == 2 * len(builtin_names()) == 38
    spans = received.flat()
    assert len(spans) == int(result.output.split("exported ")[1].split()[0])
    traces: dict[str, set[str]] = defaultdict(set)
    for span in spans:
        traces[span["trace_id"]].add(span["span_id"])
    assert len(traces) == len(rows)
    owners: dict[str, str] = {}
    for trace_id, span_ids in traces.items():
        for span_id in span_ids:
            assert owners.setdefault(span_id, trace_id) == trace_id, f"span {span_id} shared"


def _ids(outcome_trace: dict[str, object]) -> tuple[set[str], list[str]]:
    flat = flatten(outcome_trace)
    return {s["trace_id"] for s in flat}, sorted(s["span_id"] for s in flat)


def test_ids_are_deterministic_per_run_and_differ_by_policy_seed_and_strategy() -> None:
    scenario, source = resolve("cascade")
    base = run_scenario(scenario, policy="buggy", seed=0, source=source)
    again = run_scenario(scenario, policy="buggy", seed=0, source=source)
    assert _ids(base.trace) == _ids(again.trace)
    [trace_id], span_ids = _ids(base.trace)
    for other in (
        run_scenario(scenario, policy="fixed", seed=0, source=source),
        run_scenario(scenario, policy="buggy", seed=1, source=source),
        run_scenario(scenario, policy="buggy", seed=0, strategy="random", source=source),
        run_scenario(
            scenario.model_copy(update={"description": "another scenario"}),
            policy="buggy",
            seed=0,
            source=source,
        ),
    ):
        [other_trace], other_spans = _ids(other.trace)
        assert other_trace != trace_id
        assert not set(other_spans) & set(span_ids)
