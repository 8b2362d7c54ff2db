"""``harness trace show | html`` as a user runs them (subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenarios import resolve, run_scenario
from harness.scenarios.artifacts import write_run

pytestmark = pytest.mark.integration


def _harness(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "80"},
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenario, _ = resolve("cascade")
    outcome = run_scenario(scenario, policy="buggy")
    return write_run(outcome, scenario, tmp_path_factory.mktemp("runs"))


def test_show_prints_the_waterfall_at_80_columns(run_dir: Path) -> None:
    proc = _harness("trace", "show", run_dir, "--focus", "server")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.startswith("■ ssh (mcp)") for line in lines)
    assert "↻ reconnect performed (timeout, in flight 1)" in proc.stdout
    assert "★ no_reconnect_while_in_flight" in proc.stdout


def test_show_on_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    proc = _harness("trace", "show", tmp_path / "missing")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    assert "not a run directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_html_writes_the_report_and_rejects_an_unwritable_target(
    run_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cascade.html"
    proc = _harness("trace", "html", run_dir, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert out.read_text(encoding="utf-8") == (run_dir / "report.html").read_text(encoding="utf-8")
    bad = _harness("trace", "html", run_dir, "-o", tmp_path / "no" / "such" / "dir.html")
    assert bad.returncode == 2
    assert "cannot write the report" in bad.stderr
    assert "Traceback" not in bad.stderr
