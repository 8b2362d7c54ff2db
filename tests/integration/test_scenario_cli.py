"""``harness run | replay | check | list | schema`` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def all_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    cwd = tmp_path_factory.mktemp("runs")
    return cwd, _harness("run", "--all", "--json", cwd=cwd)


def test_run_all_meets_every_expectation(
    all_runs: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, proc = all_runs
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) >= 18
    assert {r["outcome"] for r in rows if r["policy"] == "buggy"} == {"reproduced"}
    assert {r["outcome"] for r in rows if r["policy"] == "fixed"} == {"held"}
    for row in rows:
        run_dir = Path(row["run_dir"])
        assert not run_dir.is_absolute() or run_dir.is_relative_to(cwd)
        for artifact in ("run.json", "trace.jsonl", "journal.jsonl", "events.jsonl"):
            assert (cwd / run_dir / artifact).is_file(), (run_dir, artifact)
        assert {o["name"] for o in row["oracles"]} >= {row["deciding_oracle"]}


def test_replay_reproduces_outcome_and_trace(
    all_runs: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, _ = all_runs
    run_dir = next((cwd / "runs").glob("cascade-buggy-s0-*"))
    proc = _harness("replay", str(run_dir), cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "outcome: reproduced (recorded reproduced)" in proc.stdout
    assert "trace: identical" in proc.stdout


def test_check_on_a_saved_run_gives_the_runs_verdicts(
    all_runs: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, _ = all_runs
    buggy = next((cwd / "runs").glob("orphaned_tool_block-buggy-s0-*"))
    proc = _harness("check", str(buggy), cwd=cwd)
    assert proc.returncode == 1
    assert "tool_pairing_valid" in proc.stdout
    assert "FAILS" in proc.stdout
    fixed = next((cwd / "runs").glob("orphaned_tool_block-fixed-s0-*"))
    proc = _harness("check", str(fixed), "--oracle", "tool_pairing_valid", cwd=cwd)
    assert proc.returncode == 0, proc.stdout
    assert "holds" in proc.stdout


def test_check_a_bare_trace_file(all_runs: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    cwd, _ = all_runs
    trace = next((cwd / "runs").glob("scope_leak-fixed-s0-*")) / "trace.jsonl"
    proc = _harness("check", str(trace), cwd=cwd)
    # The trace has no final answers: the review oracle cannot judge (exit 4), none fails.
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "review_saw_all_contexts    CANNOT JUDGE" in proc.stdout
    assert "no_secrets_in_telemetry    holds" in proc.stdout


def test_list_and_schema(tmp_path: Path) -> None:
    listing = _harness("list", cwd=tmp_path)
    assert listing.returncode == 0
    assert listing.stdout.splitlines()[0].startswith("cascade ")
    schema = json.loads(_harness("schema", cwd=tmp_path).stdout)
    assert {"name", "model", "oracles", "expect"} <= set(schema["properties"])


# Nearly every seed (all but 1 in 10**5) draws an approval answer past the budget, which is
# refused for that seed (located); the load-time check passes, the smallest value fitting.
_BAD_DRAW = """\
name: qa_reject
description: The user rejects a deploy; the model is told the call was rejected and says so.
runtime:
  prompt: Deploy web to prod.
  capture_content: true
  agents:
    main: {thread: session}
  approvals: {tools: [deploy], after: {uniform: [10, 100000000]}, decision: reject}
  scheduled:
    - {name: again, at: 300, agent: main, context_id: General, prompt: "Did it deploy?"}
servers:
  ops:
    fake: declared
    script:
      tools:
        deploy:
          description: Deploy a service.
          input_schema: {properties: {service: {type: string}}, required: [service]}
          default: {latency: 5, result: {text: "deployed web"}}
model:
  agents:
    main:
      turns:
        - tool_use: [{name: deploy, input: {service: web}}]
        - text: "Result: {tool_results}"
        - text: "No, it was rejected."
oracles:
  - tool_result_contains: {text: "The user rejected this tool call.", tool: deploy}
  - tool_result_never_contains: {text: "deployed web"}
  - answer_contains: {text: "rejected"}
  - persisted_history_valid
  - tool_pairing_valid
  - tool_calls_at_most: {max: 0}
  - agents_completed
expect:
  buggy: [persisted_history_valid]
policies:
  buggy: {approval_resume: write_results_only}
  fixed: {approval_resume: write_turn}
budget: {virtual: 1800, wall: 30}
"""


def test_one_scenarios_bad_draw_stops_only_that_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad_draw.yaml"
    bad.write_text(_BAD_DRAW, encoding="utf-8")
    proc = _harness("run", str(bad), "cascade", "--seed", "3", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{bad}:8, field 'runtime.approvals.after': seed 3 drew values" in proc.stderr
    assert "not run, bad input (above): qa_reject (buggy), qa_reject (fixed)" in proc.stderr
    # The other scenario ran under both policies and was recorded.
    assert sorted(d.name.split("-")[1] for d in (tmp_path / "out").iterdir()) == [
        "buggy",
        "fixed",
    ]
    assert "cascade" in proc.stdout


def test_bad_input_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndescription: d\nmodel: {agents: {}}\noracles: [nope]\n")
    proc = _harness("run", str(bad), cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(bad) in proc.stderr
    missing = _harness("run", "no_such_scenario", cwd=tmp_path)
    assert missing.returncode == 2
    assert "built-in scenarios" in missing.stderr
    nothing = _harness("run", cwd=tmp_path)
    assert nothing.returncode == 2
    assert "--all" in nothing.stderr
    broken_dir = _harness("replay", str(tmp_path), cwd=tmp_path)
    assert broken_dir.returncode == 2
    assert "Traceback" not in broken_dir.stderr
