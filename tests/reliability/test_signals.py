"""Signals and concurrency: what an outside attack found, kept out.

- SIGTERM and SIGHUP stop ``harness run`` (live and sim) and ``harness explore`` (``--jobs 1``
  and ``--jobs 2``) the way Ctrl-C does: within 3 s (scaled by the machine's load measured at
  the signal), exit 128 + the signal, the runs finished so far recorded, the one cut short
  marked interrupted, no traceback, no process, ``harness-live-*`` or ``pymp-*`` left behind;
  the servers stop cleanly on SIGHUP as on SIGTERM;
- Ctrl-C in ``explore`` is one keystroke, on a real terminal (the kernel signals the whole
  foreground group) and without one (``kill -INT``, also when the shell started the command
  with SIGINT ignored, as it does a background job); the seed cut short is no failure and no
  nondeterminism: everything stored is true (every stored seed fails again);
- concurrency: twelve processes adding to the failure database at once lose no seed; two
  ``harness run --all`` into one directory at once replace none of each other's runs; runs that
  differ only in strategy get their own directories, and replay finds each;
- an output that cannot be written (``/proc/x``, ``/dev/null``, a name too long) is refused
  before any run; explore prints its summary even when storing the failing seeds fails.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.explore.signature import deciding_failure
from harness.scenarios import builtin_names, resolve, run_scenario
from harness.scenarios.failure_db import FailureDB
from tests.reliability._cli import invoke
from tests.reliability._db_writer import add_seed
from tests.reliability._resources import descendants
from tests.reliability._signals import (
    CTRL_C,
    STDIO_SERVER_GRACE_S,
    Command,
    assert_nothing_left,
    import_cpu,
)

# Each test starts the harness and waits for events (each wait bounded on its own); on a busy
# machine that takes longer than the suite's default limit.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


@pytest.fixture(scope="module")
def imports_cpu() -> float:
    return import_cpu()


def _run_dirs(out: Path) -> list[Path]:
    """The run directories written whole (run.json is renamed into place last)."""
    done = [d for d in out.iterdir() if (d / "run.json").exists()] if out.is_dir() else []
    return sorted(done, key=lambda d: (d / "run.json").stat().st_mtime)


def _meta(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _assert_recorded_then_interrupted(out: Path, scenario: str | None = None) -> None:
    """Every run directory is complete; the last one is the run cut short."""
    dirs = _run_dirs(out)
    assert dirs, "no run directory written"
    for run_dir in dirs:
        meta = _meta(run_dir)
        assert scenario is None or meta["scenario"] == scenario
        for line in (run_dir / "trace.jsonl").read_text(encoding="utf-8").splitlines():
            assert "resourceSpans" in json.loads(line)
    assert _meta(dirs[-1])["outcome"] == "interrupted"
    assert all(_meta(d)["interrupted"] is False for d in dirs[:-1])


# -- SIGTERM and SIGHUP, like Ctrl-C --------------------------------------------------------------


@pytest.mark.parametrize(
    ("sig", "to_group"),
    [(signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGHUP, False)],
    ids=["sigterm", "sigterm-group", "sighup"],
)
def test_sigterm_and_sighup_stop_a_live_run_as_ctrl_c_does(
    sig: signal.Signals, to_group: bool, tmp_path: Path, reaper: None
) -> None:
    out = tmp_path / "runs"
    cmd = Command(["run", "cascade", "--mode", "live", "--out", str(out)], cwd=tmp_path)
    cmd.wait_for(lambda: len(descendants(cmd.pid)) > 0, "starting a server")
    started = cmd.cpu_seconds()
    cmd.wait_cpu(started + 0.5)  # the run is under way
    stopped = cmd.stop(sig, to_group=to_group, grace=STDIO_SERVER_GRACE_S)
    assert stopped.returncode == SIGNALS[sig], stopped.output[-3000:]
    stopped.assert_quick()
    assert "Traceback" not in stopped.output, stopped.output[-3000:]
    assert "interrupted" in stopped.stderr
    assert_nothing_left(stopped.pid, tmp_path)
    _assert_recorded_then_interrupted(out, "cascade")


@pytest.mark.parametrize("sig", list(SIGNALS), ids=lambda s: signal.Signals(s).name)
def test_every_stop_signal_stops_sim_runs_and_keeps_the_finished_ones(
    sig: signal.Signals, tmp_path: Path, reaper: None
) -> None:
    out = tmp_path / "runs"
    cmd = Command(["run", "--all", "--out", str(out), "--no-failure-db"], cwd=tmp_path)
    cmd.wait_for(lambda: len(_run_dirs(out)) >= 3, "three runs written")
    stopped = cmd.stop(sig, to_group=False)
    assert stopped.returncode == SIGNALS[sig], stopped.output[-3000:]
    stopped.assert_quick()
    assert "Traceback" not in stopped.output
    assert_nothing_left(stopped.pid, tmp_path)
    dirs = _run_dirs(out)
    # Stopped between two runs, the last one is complete; stopped inside one, it is marked.
    assert 3 <= len(dirs) < 28
    assert all((d / "run.json").exists() for d in out.iterdir()), "a run directory left empty"
    for run_dir in dirs[:-1]:
        assert _meta(run_dir)["interrupted"] is False
    assert _meta(dirs[-1])["outcome"] in ("interrupted", "reproduced", "held")


# -- explore: one signal, nothing false recorded ------------------------------------------------

_EXPLORE_CASES = [
    # jobs, how, to the group, on a terminal, started with SIGINT ignored (a background job)
    pytest.param(1, CTRL_C, True, True, False, id="jobs1-terminal-ctrl-c"),
    pytest.param(1, signal.SIGINT, False, False, True, id="jobs1-background-kill-int"),
    pytest.param(1, signal.SIGTERM, True, False, False, id="jobs1-sigterm-group"),
    pytest.param(1, signal.SIGHUP, False, False, False, id="jobs1-sighup"),
    pytest.param(2, CTRL_C, True, True, False, id="jobs2-terminal-ctrl-c"),
    pytest.param(2, signal.SIGINT, False, False, True, id="jobs2-background-kill-int"),
    pytest.param(2, signal.SIGTERM, True, False, False, id="jobs2-sigterm-group"),
    pytest.param(2, signal.SIGHUP, True, False, False, id="jobs2-sighup-group"),
]
_RUNS = 100_000


def _stored_seeds_fail_again(db_root: Path) -> list[int]:
    scenario, _ = resolve("cascade_random")
    seeds = FailureDB(db_root).seeds(scenario.content_hash(), policy="buggy", strategy="fifo")
    for seed in seeds:
        outcome = run_scenario(scenario, policy="buggy", seed=seed)
        assert deciding_failure(outcome.verdicts, scenario.expect.buggy) is not None, seed
    return seeds


@pytest.mark.parametrize(("jobs", "how", "to_group", "tty", "sigint_ignored"), _EXPLORE_CASES)
def test_one_signal_stops_explore_and_records_nothing_false(
    jobs: int,
    how: int | str,
    to_group: bool,
    tty: bool,
    sigint_ignored: bool,
    tmp_path: Path,
    imports_cpu: float,
    reaper: None,
) -> None:
    db_root = tmp_path / "failures"
    args = ["explore", "cascade_random", "--runs", str(_RUNS), "--jobs", str(jobs)]
    args += ["--db", str(db_root), *([] if tty else ["--json"])]
    cmd = Command(args, cwd=tmp_path, tty=tty, sigint_ignored=sigint_ignored)
    # Past its imports and a good number of runs into the loop (the workers are forked from
    # a server that imported what a run needs).
    if jobs > 1:
        cmd.wait_workers_cpu(jobs, 2.0)
    else:
        cmd.wait_cpu(imports_cpu + 1.5)
    stopped = cmd.stop(how, to_group=to_group)
    expected = 130 if how == CTRL_C else SIGNALS[int(how)]
    assert stopped.returncode == expected, stopped.output[-3000:]
    stopped.assert_quick()
    for noise in ("Traceback", "leaked semaphore", "resource_tracker"):
        assert noise not in stopped.output, stopped.output[-3000:]
    assert_nothing_left(stopped.pid, tmp_path)
    if tty:
        found = re.search(r"interrupted after (\d+) of (\d+) runs", stopped.output)
        assert found is not None, stopped.output[-3000:]
        runs = int(found.group(1))
    else:
        report = json.loads(stopped.stdout)
        assert report["interrupted"] is True
        runs = report["runs"]
    assert 0 < runs < _RUNS
    # The run cut short is neither a failure nor a nondeterminism defect.
    assert not (tmp_path / "nondeterminism").exists()
    stored = _stored_seeds_fail_again(db_root)
    if not tty:
        assert stored == sorted(report["failing_seeds"])
        assert report["nondeterministic"] == []


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
def test_a_signal_during_the_imports_stops_the_command_cleanly(
    fraction: float, tmp_path: Path, imports_cpu: float, reaper: None
) -> None:
    # Landing in the SDKs' imports, Ctrl-C may hit pydantic building a validator, which turns
    # the KeyboardInterrupt into a SchemaError of its own: still an interrupt, not a crash.
    args = ["explore", "cascade_random", "--runs", "1000", "--jobs", "2", "--json"]
    cmd = Command([*args, "--failure-db", str(tmp_path / "failures")], cwd=tmp_path)
    cmd.wait_cpu(imports_cpu * fraction)
    stopped = cmd.stop(signal.SIGINT, to_group=False)
    assert stopped.returncode == 130, stopped.output[-3000:]
    stopped.assert_quick()
    assert "Traceback" not in stopped.output, stopped.output[-3000:]
    assert_nothing_left(stopped.pid, tmp_path)


def _serve(args: list[str], tmp_path: Path, prefix: str) -> Command:
    cmd = Command(args, cwd=tmp_path)
    assert cmd.proc.stdout is not None
    line = cmd.proc.stdout.readline().decode()
    assert line.startswith(prefix), line
    return cmd


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=["sighup", "sigterm"])
@pytest.mark.parametrize(
    "server",
    [
        ["fake-mcp", "ssh", "--transport", "http", "--port", "0"],
        ["proxy", "serve", "--port", "0"],
        ["fake-api", "serve", "--port", "0"],
    ],
    ids=["fake-mcp-http", "proxy", "fake-api"],
)
def test_servers_stop_cleanly_on_sighup_as_on_sigterm(
    server: list[str], sig: signal.Signals, tmp_path: Path, reaper: None
) -> None:
    events = tmp_path / "events.jsonl"
    args = server + (["--events", str(events)] if server[0] == "fake-mcp" else [])
    cmd = _serve(args, tmp_path, "listening on ")
    stopped = cmd.stop(sig, to_group=False)
    assert stopped.returncode == 0, stopped.output[-3000:]
    stopped.assert_quick()
    assert "Traceback" not in stopped.output
    assert_nothing_left(stopped.pid, tmp_path)
    if server[0] == "fake-mcp":
        kinds = [json.loads(line)["kind"] for line in events.read_text().splitlines()]
        assert kinds[-1] == "stopped", kinds


# The server's input stays open, as a client's does: at end of input it stops on its own, and
# the signal then met a process on its way out (killed by it, or exit 0 without a signal).
def test_a_stdio_fake_server_stops_cleanly_on_sighup(tmp_path: Path, reaper: None) -> None:
    events = tmp_path / "events.jsonl"
    cmd = Command(["fake-mcp", "ssh", "--events", str(events)], cwd=tmp_path, stdin_open=True)
    cmd.wait_for(lambda: events.exists() and events.stat().st_size > 0, "logging its start")
    stopped = cmd.stop(signal.SIGHUP, to_group=False)
    assert stopped.returncode == 0, stopped.output[-3000:]
    assert "Traceback" not in stopped.output
    details = [json.loads(line) for line in events.read_text().splitlines()]
    assert details[-1]["kind"] == "stopped", details
    assert details[-1]["detail"].get("signal") == "SIGINT", details  # the receiver's stop


# -- concurrency ---------------------------------------------------------------------------------


def test_concurrent_failure_database_writers_lose_no_seed(tmp_path: Path, reaper: None) -> None:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["harness.scenarios.failure_db", "tests.reliability._db_writer"])
    barrier = context.Barrier(12)
    writers = [
        context.Process(target=add_seed, args=(tmp_path, seed, barrier)) for seed in range(12)
    ]
    try:
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=600)
            assert writer.exitcode == 0
    finally:
        for writer in writers:
            if writer.is_alive():
                writer.kill()
                writer.join()
    assert FailureDB(tmp_path).seeds("h", policy="buggy", strategy="fifo") == list(range(12))


def test_two_runs_into_one_directory_at_once_replace_nothing(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "harness", "run", "--all", "--out", str(out), "--json"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    printed: list[str] = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-2000:]
        printed += [json.loads(line)["run_dir"] for line in stdout.splitlines()]
    dirs = [d for d in out.iterdir() if d.is_dir()]
    # Two commands, each every built-in scenario under both policies.
    assert len(printed) == len(set(printed)) == len(dirs) == 2 * 2 * len(builtin_names())
    for run_dir in dirs:
        # Each directory holds the run that wrote it, whole.
        assert _meta(run_dir)["run_dir"] == str(run_dir)


def test_runs_that_differ_in_strategy_get_their_own_directories_and_replay(
    tmp_path: Path,
) -> None:
    out = tmp_path / "runs"
    dirs = []
    for strategy in ("fifo", "random", "pct"):
        args = ["run", "cascade", "--policy", "buggy", "--strategy", strategy, "--json"]
        code, output = invoke([*args, "--out", str(out), "--no-failure-db"])
        assert code == 0, output
        dirs.append(Path(json.loads(output)["run_dir"]))
    assert len(set(dirs)) == 3
    assert [d.name.split("-")[3] for d in dirs] == ["fifo", "random", "pct"]
    for run_dir in dirs:
        code, output = invoke(["replay", str(run_dir)])
        assert code == 0, output
        assert "trace: identical" in output


# -- outputs that cannot be written -------------------------------------------------------------

_UNWRITABLE = ["/proc/x", "/dev/null", "x" * 300]


@pytest.mark.parametrize("where", _UNWRITABLE, ids=["proc", "dev-null", "name-too-long"])
def test_an_unwritable_output_is_refused_before_any_run(where: str, tmp_path: Path) -> None:
    for args in (
        ["run", "cascade", "--out", where],
        ["explore", "cascade_random", "--runs", "5", "--db", where, "--json"],
    ):
        started = time.process_time()
        code, output = invoke(args)
        assert code == 2, output
        assert f"error: {where[:60]}" in output
        assert "cannot write" in output
        # Refused up front: no run made (a run costs imports and tens of milliseconds).
        assert "reproduced" not in output
        assert '"runs"' not in output
        assert time.process_time() - started < 5


def _limit_file_size() -> None:
    # Any write of more than 0 bytes to a regular file fails (EFBIG; Python ignores SIGXFSZ):
    # the up-front check (an empty probe file) passes, storing the failing seeds does not.
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_explore_prints_its_summary_when_the_failing_seeds_cannot_be_stored(
    tmp_path: Path,
) -> None:
    args = ["explore", "cascade_random", "--runs", "20", "--db", str(tmp_path / "failures")]
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *args, "--json"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        preexec_fn=_limit_file_size,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["runs"] == 20
    assert report["failures"] >= 1
    assert "not stored" in report["storage_error"]
    assert "error: the failing seeds were not stored" in proc.stderr
    assert proc.returncode == 1
