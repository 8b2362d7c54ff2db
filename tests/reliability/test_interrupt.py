"""Ctrl-C: SIGINT at seeded random points of a live run and of ``explore --jobs 2``.

The command runs in its own session, as under a terminal; the signal goes either to its
process group (what a terminal's Ctrl-C does: every process of the group gets it) or to the
main process only (``kill -INT``). It must exit within 3 s of the signal (the requirement of
the issue, not a benchmark), leave no process running (this test process is the subreaper of
everything it started, so even orphans are seen), and keep what was recorded: a live run's
``run.json`` and every line of its ``trace.jsonl`` parse, and the run is marked interrupted.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability._resources import descendants, processes

pytestmark = pytest.mark.integration

EXIT_BOUND_S = 3.0
# How long a command may take to get going (imports, first subprocess) on a loaded machine.
START_BOUND_S = 30.0


@dataclass(frozen=True, slots=True)
class Interrupted:
    pid: int
    returncode: int
    exit_after_s: float
    stdout: str
    stderr: str
    running_at_signal: list[str]


def _interrupt(args: list[str], *, cwd: Path, seed: int, max_delay: float) -> Interrupted:
    """Start ``python -m harness ARGS``, wait until it has started a subprocess (the run is
    under way), wait a seeded random delay, send SIGINT and time the exit."""
    rng = random.Random(seed)
    delay = rng.uniform(0.0, max_delay)
    to_group = rng.random() < 0.5
    env = dict(os.environ, TMPDIR=str(cwd))
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_BOUND_S
        while not descendants(proc.pid):
            assert proc.poll() is None, f"exited before starting anything: {proc.communicate()}"
            assert time.monotonic() < deadline, "started no subprocess"
            time.sleep(0.01)
        time.sleep(delay)
        running = [p.cmdline for p in descendants(proc.pid)]
        if to_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        try:
            stdout, stderr = proc.communicate(timeout=EXIT_BOUND_S + 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            pytest.fail(f"no exit {EXIT_BOUND_S + 10} s after SIGINT: {stderr[-2000:]}")
        exit_after = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return Interrupted(proc.pid, proc.returncode, exit_after, stdout, stderr, running)


def _assert_nothing_left(group: int) -> None:
    # A process killed on the way out may still be tearing down (state R, no command line)
    # for a moment: it gets that moment, not more.
    deadline = time.monotonic() + 1.0
    while any(not p.zombie for p in descendants()) and time.monotonic() < deadline:
        time.sleep(0.01)
    alive = [p for p in descendants() if not p.zombie]
    assert alive == [], "processes outlived the interrupted command"
    in_group = [p for p in processes().values() if p.pgid == group and not p.zombie]
    assert in_group == [], "processes of the command's group still run"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ctrl_c_during_a_live_run(seed: int, tmp_path: Path, reaper: None) -> None:
    out = tmp_path / "runs"
    result = _interrupt(
        ["run", "cascade", "--mode", "live", "--out", str(out)],
        cwd=tmp_path,
        seed=seed,
        max_delay=2.5,
    )
    assert result.returncode == 130, result.stderr[-2000:]
    assert result.exit_after_s <= EXIT_BOUND_S, f"exit {result.exit_after_s:.2f} s after SIGINT"
    assert "Traceback" not in result.stderr
    assert "interrupted" in result.stderr
    _assert_nothing_left(group=result.pid)
    run_dirs = sorted(out.iterdir(), key=lambda d: d.stat().st_mtime)
    assert run_dirs, "no run directory written"
    for run_dir in run_dirs:
        assert (
            json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["scenario"] == "cascade"
        )
        lines = (run_dir / "trace.jsonl").read_text(encoding="utf-8").splitlines()
        assert lines, f"{run_dir.name}: empty trace.jsonl"
        for line in lines:
            assert "resourceSpans" in json.loads(line)
    last = json.loads((run_dirs[-1] / "run.json").read_text(encoding="utf-8"))
    assert last["interrupted"] is True
    assert last["outcome"] == "interrupted"
    for run_dir in run_dirs[:-1]:
        assert (
            json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["interrupted"] is False
        )


@pytest.mark.parametrize("seed", [4, 5])
def test_ctrl_c_during_explore_with_two_jobs(seed: int, tmp_path: Path, reaper: None) -> None:
    result = _interrupt(
        [
            "explore",
            "cascade_random",
            "--runs",
            "200",
            "--jobs",
            "2",
            "--db",
            str(tmp_path / "failures"),
            "--json",
        ],
        cwd=tmp_path,
        seed=seed,
        max_delay=3.0,
    )
    assert result.returncode == 130, result.stderr[-2000:]
    assert result.exit_after_s <= EXIT_BOUND_S, f"exit {result.exit_after_s:.2f} s after SIGINT"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["interrupted"] is True
    assert report["runs"] < 200
    assert "interrupted after" in result.stderr
    _assert_nothing_left(group=result.pid)
