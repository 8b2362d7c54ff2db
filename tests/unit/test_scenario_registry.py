"""Scenarios by name: the built-ins and the public bug files (``scenarios/bugs/``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import ScenarioError
from harness.scenarios.registry import BUGS_DIR, bug_names, builtin_names, builtin_path, resolve


def test_a_bug_file_resolves_by_its_name_and_replays_by_it() -> None:
    name = bug_names()[0]
    scenario, replay = resolve(name)
    assert replay == name
    assert scenario.name == name
    assert builtin_path(name) == BUGS_DIR / f"{name}.yaml"


def test_bug_files_are_not_built_ins_of_run_all() -> None:
    assert set(bug_names()).isdisjoint(builtin_names())
    assert "mcp_qwen-code_11272" in bug_names()


def test_a_near_miss_suggests_the_bug_file() -> None:
    with pytest.raises(ScenarioError, match="did you mean 'mcp_qwen-code_11272'"):
        resolve("mcp_qwen-code_1127")
    assert builtin_path("bugs/mcp_qwen-code_11272") is None


def test_list_bugs_lists_every_bug_file_and_only_them() -> None:
    result = CliRunner().invoke(cli, ["list", "--bugs"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.splitlines() if line.strip()]
    assert listed == bug_names()


def test_new_copies_a_bug_file_under_its_own_name(tmp_path: Path) -> None:
    dest = tmp_path / "mine.yaml"
    result = CliRunner().invoke(cli, ["new", "history_pi_8667", str(dest)])
    assert result.exit_code == 0, result.output
    text = dest.read_text(encoding="utf-8")
    assert "\nname: mine\n" in text
    assert "pi" in text.splitlines()[0].lower()  # the header naming the public thread is kept
