"""The command line speaks one language: --json where a command has results, one name per
concept (old spellings still accepted), warnings for flags that do nothing, suggestions for a
misspelled name, and a copy of a built-in scenario to start from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenarios import builtin_names, resolve

# Each test starts harness several times (a few seconds each idle, up to a minute on a busy
# 2-core machine): the per-test timeout is a hang guard, not a bound on the machine's speed.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
    )  # fmt: skip


def test_list_json_names_every_builtin_scenario(tmp_path: Path) -> None:
    done = _harness("list", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["name"] for r in rows] == builtin_names()
    scenario, _ = resolve("cascade")
    assert rows[0]["description"] == " ".join(scenario.description.split())
    assert all(Path(r["path"]).is_file() for r in rows)


def test_a_misspelled_scenario_gets_a_suggestion(tmp_path: Path) -> None:
    done = _harness("run", "cascad", cwd=tmp_path)
    assert done.returncode == 2
    assert "no scenario named 'cascad'; did you mean 'cascade'?" in done.stderr


def test_flags_that_do_nothing_are_warned_about(tmp_path: Path) -> None:
    done = _harness(
        "run", "cascade", "--all", "--policy", "fixed", "--seed", "0",
        "--time-scale", "0.1", "--out", str(tmp_path / "runs"), "--json", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "warning: --all runs every built-in scenario; cascade already among them" in (
        done.stderr
    )
    assert "warning: --time-scale applies to --mode live only; sim ignores it" in done.stderr
    runs = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(runs) == len(builtin_names())  # cascade ran once


def test_new_copies_a_builtin_scenario_under_its_own_name(tmp_path: Path) -> None:
    done = _harness("new", "cascade", "my_cascade.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    copy = (tmp_path / "my_cascade.yaml").read_text()
    assert copy.startswith("name: my_cascade\n")
    ran = _harness("run", "my_cascade.yaml", "--policy", "buggy", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["scenario"] == "my_cascade"
    again = _harness("new", "cascade", "my_cascade.yaml", cwd=tmp_path)
    assert again.returncode == 2
    assert "exists (--force overwrites it)" in again.stderr


def test_replay_and_check_speak_json(tmp_path: Path) -> None:
    ran = _harness("run", "scope_leak", "--policy", "buggy", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    run_dir = tmp_path / json.loads(ran.stdout)["run_dir"]
    replay = json.loads(_harness("replay", str(run_dir), "--json", cwd=tmp_path).stdout)
    assert replay == {
        "outcome": "reproduced",
        "recorded_outcome": "reproduced",
        "trace": "identical",
        "spans": replay["spans"],
        "difference": None,
    }
    checked = _harness("check", str(run_dir), "--json", cwd=tmp_path)
    assert checked.returncode == 1
    summary = json.loads(checked.stdout)
    assert summary["exit_status"] == 1
    verdicts = {o["name"]: o["verdict"] for o in summary["oracles"]}
    assert verdicts["scheduled_scope_explicit"] == "fails"


def test_the_old_spellings_still_work(tmp_path: Path) -> None:
    done = _harness(
        "explore", "cascade", "--runs", "1", "--db", str(tmp_path / "db"), "--json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "db").is_dir()
    no_db = _harness("explore", "cascade", "--runs", "1", "--no-db", "--json", cwd=tmp_path)
    assert no_db.returncode == 0, no_db.stderr
    helped = _harness("explore", "--help", cwd=tmp_path).stdout
    assert "--failure-db" in helped
    assert "--no-failure-db" in helped
    assert "--db " not in helped
