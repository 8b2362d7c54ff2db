"""``harness check`` never passes for lack of evidence: on a bare trace it rebuilds what the
oracles need from the spans, or answers "cannot judge" (exit 4) and says what is missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from harness.cli import cli
from harness.scenarios import resolve, run_scenario, write_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    out: dict[str, Path] = {}
    for name in ("cascade", "orphaned_tool_block", "scope_leak"):
        scenario, source = resolve(name)
        for policy in ("buggy", "fixed"):
            outcome = run_scenario(scenario, policy=policy, seed=0, source=source)
            out[f"{name}-{policy}"] = write_run(outcome, scenario, root)
    return out


def _check(*args: str) -> Result:
    return CliRunner().invoke(cli, ["check", *args])


@pytest.mark.parametrize(
    ("run", "oracle"),
    [
        ("cascade", "no_reconnect_while_in_flight"),
        ("orphaned_tool_block", "tool_pairing_valid"),
        ("scope_leak", "scheduled_scope_explicit"),
    ],
)
def test_a_bare_buggy_trace_fails_the_bug_oracle_and_the_fixed_one_holds(
    runs: dict[str, Path], run: str, oracle: str
) -> None:
    buggy = _check(str(runs[f"{run}-buggy"] / "trace.jsonl"), "--oracle", oracle)
    assert buggy.exit_code == 1, buggy.output
    assert f"{oracle}" in buggy.output
    assert "FAILS" in buggy.output
    fixed = _check(str(runs[f"{run}-fixed"] / "trace.jsonl"), "--oracle", oracle)
    assert fixed.exit_code == 0, fixed.output
    assert "holds" in fixed.output


def test_a_bare_trace_gives_the_run_directorys_verdicts_where_it_can_judge(
    runs: dict[str, Path],
) -> None:
    for run_dir in runs.values():
        whole = json.loads(_check(str(run_dir), "--json").output)
        bare = json.loads(_check(str(run_dir / "trace.jsonl"), "--json").output)
        assert [o["name"] for o in bare["oracles"]] == [o["name"] for o in whole["oracles"]]
        by_name = {o["name"]: o["verdict"] for o in whole["oracles"]}
        for verdict in bare["oracles"]:
            assert verdict["verdict"] in (by_name[verdict["name"]], "cannot judge"), verdict


def test_without_oracle_a_bare_trace_runs_its_scenarios_oracles_and_names_what_is_missing(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    alone = tmp_path / "trace.jsonl"
    shutil.copy(runs["scope_leak-fixed"] / "trace.jsonl", alone)
    result = _check(str(alone), "--json")
    assert result.exit_code == 4, result.output
    summary = json.loads(result.output)
    scenario, _ = resolve("scope_leak")
    assert [o["name"] for o in summary["oracles"]] == scenario.oracle_names
    verdicts = {o["name"]: o for o in summary["oracles"]}
    assert verdicts["scheduled_scope_explicit"]["verdict"] == "holds"
    unknown = verdicts["review_saw_all_contexts"]
    assert unknown["verdict"] == "cannot judge"
    assert "final answers" in unknown["explanation"]
    secrets = verdicts["no_secrets_in_telemetry"]
    assert secrets["verdict"] == "cannot judge"


def test_a_trace_without_the_runtimes_spans_cannot_be_judged(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    data = json.loads((runs["cascade-buggy"] / "trace.jsonl").read_text())
    for resource_spans in data["resourceSpans"]:
        resource_spans["scopeSpans"] = [
            s for s in resource_spans["scopeSpans"] if s["scope"]["name"] != "harness.runtime"
        ]
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text(json.dumps(data) + "\n")
    result = _check(str(foreign), "--oracle", "no_reconnect_while_in_flight")
    assert result.exit_code == 4, result.output
    assert "CANNOT JUDGE" in result.output
    assert "harness.runtime" in result.output


def test_a_missing_target_says_it_does_not_exist(tmp_path: Path) -> None:
    result = _check(str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert f"no such run directory: {tmp_path / 'nope'}" in result.output
    assert "Traceback" not in result.output


def test_check_help_documents_the_exit_codes() -> None:
    result = _check("--help")
    assert result.exit_code == 0
    for line in ("0  every oracle holds", "1  an oracle fails", "2  bad input", "4  none fails"):
        assert line in result.output


def test_oracle_parameters_are_given_as_a_scenario_file_lists_them(runs: dict[str, Path]) -> None:
    run_dir = str(runs["cascade-fixed"])
    found = _check(run_dir, "--oracle", "answer_contains: {text: 'db1: up'}")
    assert found.exit_code == 0, found.output
    assert "holds" in found.output
    # JSON works too, and each label is its own verdict with its own parameters.
    both = _check(
        run_dir,
        "--json",
        "--oracle",
        'answer_contains:{"text": "db1: up"}',
        "--oracle",
        "answer_contains#absent: {text: xyzzy}",
    )
    assert both.exit_code == 1, both.output
    verdicts = {o["name"]: o["verdict"] for o in json.loads(both.output)["oracles"]}
    assert verdicts == {"answer_contains": "holds", "answer_contains#absent": "fails"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("answer_contains: {txt: db1}", "unknown parameter 'txt'; it takes text, regex"),
        ("answer_contains: {}", "give text or regex"),
        ("answer_contains: [db1]", "the parameters must be a mapping"),
        ("answer_contains: {text: [db1", "not valid YAML"),
        ("agents_completed: {agent: main}", "oracle agents_completed takes no parameters"),
    ],
)
def test_bad_oracle_parameters_are_refused_naming_what_is_wrong(
    runs: dict[str, Path], value: str, message: str
) -> None:
    result = _check(str(runs["cascade-fixed"]), "--oracle", value)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
