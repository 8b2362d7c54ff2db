"""A run directory alone replays: recorded by one install (another virtual environment, another
path) or by the pytest plugin, it replays as identical from another, although its stack traces
name other files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner

import harness
from harness.scenarios import resolve, run_scenario, write_run
from harness.scenarios.cli import replay_cmd
from tests._inner_suite import strict_inner_suite

pytestmark = pytest.mark.integration

pytest_plugins = ["pytester"]

_SOURCE = Path(harness.__file__).resolve().parent.parent


def _python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def other_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second virtual environment with its own copy of the harness at another path, and the
    dependencies reached through a path of its own (a link to this environment's)."""
    root = tmp_path_factory.mktemp("other")
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True, timeout=120
    )
    (root / "deps").symlink_to(sysconfig.get_paths()["purelib"], target_is_directory=True)
    for package in ("harness", "fake_servers"):
        shutil.copytree(
            _SOURCE / package, root / "src" / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    python = _python_of(root / "venv")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    Path(purelib, "other_install.pth").write_text(f"{root / 'src'}\n{root / 'deps'}\n")
    return python


def _harness(python: Path | str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "harness", *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
    )  # fmt: skip


def _stacktraces(run_dir: Path) -> list[str]:
    data = json.loads((run_dir / "trace.jsonl").read_text())
    return [
        attr["value"]["stringValue"]
        for rs in data["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
        for event in span.get("events", [])
        for attr in event.get("attributes", [])
        if attr["key"] == "exception.stacktrace"
    ]


@pytest.mark.timeout(600)
def test_a_run_recorded_by_another_install_replays_as_identical(
    other_install: Path, tmp_path: Path
) -> None:
    done = _harness(other_install, "run", "cascade", "--policy", "buggy", "--no-failure-db",
                    "--out", str(tmp_path / "runs"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    [run_dir] = (tmp_path / "runs").iterdir()
    traces = _stacktraces(run_dir)
    assert traces
    # The stack traces name the other install's files, not this one's.
    assert any(str(other_install.parents[2]) in t for t in traces)
    assert not any(str(_SOURCE / "harness") in t for t in traces)
    replay = _harness(sys.executable, "replay", str(run_dir), cwd=tmp_path)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "outcome: reproduced (recorded reproduced)" in replay.stdout
    assert "trace: identical" in replay.stdout


@pytest.mark.timeout(600)
def test_a_run_recorded_by_the_pytest_plugin_replays_as_identical(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    strict_inner_suite(pytester)
    pytester.makepyfile(
        """
        def test_cascade(harness_run):
            assert harness_run("cascade", policy="buggy").outcome == "reproduced"
        """
    )
    out = tmp_path / "kept"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-out", str(out))
    result.assert_outcomes(passed=1)
    [run_dir] = out.glob("**/cascade-buggy-s0-*")
    assert _stacktraces(run_dir)
    replay = _harness(sys.executable, "replay", str(run_dir), cwd=tmp_path)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "trace: identical" in replay.stdout


def test_a_changed_trace_is_reported_with_its_first_difference(tmp_path: Path) -> None:
    scenario, source = resolve("cascade")
    run_dir = write_run(run_scenario(scenario, policy="buggy", source=source), scenario, tmp_path)
    trace = run_dir / "trace.jsonl"
    key = '"harness.mcp.in_flight","value":{"intValue":'
    trace.write_text(trace.read_text().replace(key + '"1"}', key + '"7"}'))
    replay = CliRunner().invoke(replay_cmd, [str(run_dir)])
    assert replay.exit_code == 1
    assert "trace: DIFFERENT" in replay.output
    assert "attribute harness.mcp.in_flight was 7, is 1" in replay.output
