"""Ctrl-C: SIGINT at seeded random points of a live run and of ``explore --jobs 2``.

The command runs in its own session, as under a terminal; the signal goes either to its
process group (what a terminal's Ctrl-C does: every process of the group gets it) or to the
main process only (``kill -INT``). It must exit within 3 s of the signal (the requirement,
stretched by the machine's load measured before the signal and after the exit, so a busy CI
machine does not fail it; a live run adds the MCP SDK's fixed grace for a stdio server that is
still starting and so cannot see the end of its input), leave no process running (this test
process is the subreaper of everything it started, so even orphans are seen), and keep what
was recorded: a live run's ``run.json`` and every line of its ``trace.jsonl`` parse, and the
run is marked interrupted.
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest

from tests.reliability._resources import descendants
from tests.reliability._signals import (
    STDIO_SERVER_GRACE_S,
    Command,
    Stopped,
    assert_nothing_left,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _interrupt(
    args: list[str], *, cwd: Path, seed: int, max_delay: float, grace: float = 0.0
) -> Stopped:
    """Start ``python -m harness ARGS``, wait until it has started a subprocess (the run is
    under way), wait a seeded random delay, send SIGINT and time the exit."""
    rng = random.Random(seed)
    delay = rng.uniform(0.0, max_delay)
    to_group = rng.random() < 0.5
    cmd = Command(args, cwd=cwd)
    cmd.wait_for(lambda: len(descendants(cmd.pid)) > 0, "starting a subprocess")
    time.sleep(delay)  # the point of interruption, seeded; not a wait for a condition
    return cmd.stop(signal.SIGINT, to_group=to_group, grace=grace)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ctrl_c_during_a_live_run(seed: int, tmp_path: Path, reaper: None) -> None:
    out = tmp_path / "runs"
    result = _interrupt(
        ["run", "cascade", "--mode", "live", "--out", str(out)],
        cwd=tmp_path,
        seed=seed,
        max_delay=2.5,
        grace=STDIO_SERVER_GRACE_S,
    )
    assert result.returncode == 130, result.stderr[-2000:]
    result.assert_quick()
    assert "Traceback" not in result.stderr
    assert "interrupted" in result.stderr
    assert_nothing_left(result.pid, tmp_path)
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
    result.assert_quick()
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["interrupted"] is True
    assert report["runs"] < 200
    assert "interrupted after" in result.stderr
    assert_nothing_left(result.pid, tmp_path)
