"""A run killed or crashed while writing its directory never leaves a truncated ``trace.jsonl``
line or a half-written ``run.json``: every file is written to a temporary file and renamed.

- in process: a value that cannot be serialized, halfway through ``journal.jsonl``, fails the
  write; the previous run's files stay byte for byte and no temporary file stays behind;
- in a writer process: ``write_run`` runs over and over on one run directory and is SIGKILLed
  at a different step each round (before each rename, after a whole run); after every kill
  every file present parses, and ``run.json`` never names a newer run than ``trace.jsonl``;
  one round stops the writer just before ``run.json`` is renamed, with everything staged.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from harness.explore.db import FailureDB, FailureEntry
from harness.scenarios import resolve, run_scenario, write_run

pytestmark = pytest.mark.integration

_TEMP_SUFFIX = ".tmp"


def _final_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.iterdir() if not p.name.endswith(_TEMP_SUFFIX))


def _temp_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.iterdir() if p.name.endswith(_TEMP_SUFFIX))


def _generation(trace_line: dict[str, Any]) -> int:
    span = trace_line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    padding = next(a for a in span["attributes"] if a["key"] == "padding")
    return int(padding["value"]["stringValue"].split(":", 1)[0])


def _check_complete(run_dir: Path) -> tuple[int, int]:
    """Parse every file of ``run_dir``; return the generations of run.json and trace.jsonl."""
    names = [p.name for p in _final_files(run_dir)]
    assert names == ["events.jsonl", "journal.jsonl", "report.html", "run.json", "trace.jsonl"]
    for name in ("trace.jsonl", "journal.jsonl", "events.jsonl"):
        text = (run_dir / name).read_text(encoding="utf-8")
        assert text.endswith("\n"), f"{name} ends inside a line"
        rows = [json.loads(line) for line in text.splitlines()]
        assert rows, name
    meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert meta["scenario"] == "cascade"
    assert (run_dir / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    for temp in _temp_files(run_dir):
        assert temp.name.startswith("."), temp.name
    trace = json.loads((run_dir / "trace.jsonl").read_text(encoding="utf-8"))
    return int(meta["stats"]["generation"]), _generation(trace)


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run_dir.iterdir()}


class _Unserializable:
    def __str__(self) -> str:
        raise RuntimeError("this value cannot be written")


def test_a_write_that_fails_halfway_leaves_the_previous_run_intact(tmp_path: Path) -> None:
    scenario, _ = resolve("cascade")
    outcome = run_scenario(scenario, policy="buggy", seed=0)
    run_dir = write_run(outcome, scenario, tmp_path)
    before = _snapshot(run_dir)
    assert len(outcome.record.journal) >= 4
    # The next write differs in every file and breaks in the middle of journal.jsonl.
    outcome.trace["resourceSpans"][0]["resource"]["attributes"].append(
        {"key": "rewritten", "value": {"stringValue": "yes"}}
    )
    outcome.record.journal.insert(2, {"seq": "bad", "value": _Unserializable()})
    with pytest.raises(RuntimeError, match="cannot be written"):
        write_run(outcome, scenario, tmp_path)
    assert _snapshot(run_dir) == before
    assert _temp_files(run_dir) == []


def test_a_failure_database_write_that_fails_keeps_the_previous_file(tmp_path: Path) -> None:
    db = FailureDB(tmp_path)
    good = FailureEntry("buggy", "fifo", 3, "oracle", "sig", "harness run x --seed 3")
    db.add("abc123", "cascade", [good])
    before = db.path_for("abc123").read_bytes()
    bad = FailureEntry("buggy", "fifo", 4, "oracle", _Unserializable(), "replay")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        db.add("abc123", "cascade", [bad])
    assert db.path_for("abc123").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abc123.json"]
    assert db.entries("abc123") == [good]


# The writer: one sim run, then, per command on stdin, a forked worker that writes the run
# again and again (each generation with its number in the trace and in run.json's stats, and
# 20000 small trace attributes so that serializing the trace takes a while), announcing when it
# starts to serialize the trace or run.json and before every rename. A command names the
# announcement at which the test kills the worker. Forking keeps the imports to one per test.
_WRITER = r"""
import json, os, signal, sys
from pathlib import Path
from harness.scenarios import resolve, run_scenario, write_run

root = Path(sys.argv[1])
scenario, _ = resolve("cascade")
outcome = run_scenario(scenario, policy="buggy", seed=0)
span = outcome.trace["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
filler = [{"key": f"pad.{i}", "value": {"stringValue": "x" * 64}} for i in range(20000)]
base_attributes = list(span["attributes"]) + filler

def generation(n):
    marker = {"key": "padding", "value": {"stringValue": f"{n}:"}}
    span["attributes"] = [*base_attributes, marker]
    outcome.stats["generation"] = n

generation(0)
run_dir = write_run(outcome, scenario, root)
print(f"ready {run_dir}", flush=True)
real_replace, real_dumps = os.replace, json.dumps
for command in sys.stdin:
    pause_at, first = command.rstrip("\n").rsplit(" ", 1)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        def announce(line):
            print(line, flush=True)
            if line == pause_at:
                signal.pause()
        def replace(src, dst):
            announce(f"replace {Path(dst).name}")
            real_replace(src, dst)
        def dumps(obj, *args, **kwargs):
            if isinstance(obj, dict) and "resourceSpans" in obj:
                announce("dumps trace.jsonl")
            elif isinstance(obj, dict) and "scenario_definition" in obj:
                announce("dumps run.json")
            return real_dumps(obj, *args, **kwargs)
        os.replace, json.dumps = replace, dumps
        n = int(first)
        while True:
            generation(n)
            write_run(outcome, scenario, root)
            announce(f"wrote {n}")
            n += 1
    print(f"worker {pid}", flush=True)
    os.waitpid(pid, 0)
    print("reaped", flush=True)
"""


class _Writer:
    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.stdin = self.proc.stdin
        self.stdout = self.proc.stdout
        first = self._line()
        assert first.startswith("ready "), first
        self.run_dir = Path(first.split(" ", 1)[1])

    def _line(self) -> str:
        line = self.stdout.readline()
        assert line, f"the writer exited ({self.proc.poll()})"
        return line.strip()

    def round(self, start: int, kill_at: str, nth: int = 1, *, pause: bool = False) -> list[str]:
        """Start a worker at generation ``start`` and SIGKILL it at its ``nth`` announcement
        starting with ``kill_at`` (``pause``: the worker stops there and waits for the kill),
        or after its third whole run. Returns every announcement the worker made."""
        self.stdin.write(f"{kill_at if pause else '-'} {start}\n")
        self.stdin.flush()
        seen: list[str] = []
        worker = 0
        while True:
            line = self._line()
            if line.startswith("worker "):
                worker = int(line.split()[1])
                continue
            seen.append(line)
            hits = sum(1 for s in seen if s.startswith(kill_at))
            if hits == nth or sum(1 for s in seen if s.startswith("wrote")) == 3:
                break
        while worker == 0:
            line = self._line()
            if line.startswith("worker "):
                worker = int(line.split()[1])
            else:
                seen.append(line)
        os.kill(worker, signal.SIGKILL)
        while (line := self._line()) != "reaped":
            seen.append(line)
        return seen

    def close(self) -> None:
        self.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        finally:
            self.stdout.close()


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[_Writer]:
    w = _Writer(tmp_path)
    try:
        yield w
    finally:
        w.close()


def test_a_writer_killed_at_any_step_leaves_only_complete_files(writer: _Writer) -> None:
    run_dir = writer.run_dir
    assert _check_complete(run_dir) == (0, 0)
    # While the trace is being serialized (its file open), while run.json is, just before each
    # rename, after a whole run, and in the middle of a second run.
    kill_points = [
        ("dumps trace.jsonl", 1),
        ("dumps run.json", 1),
        ("replace trace.jsonl", 1),
        ("replace journal.jsonl", 1),
        ("replace events.jsonl", 1),
        ("replace run.json", 1),
        ("replace report.html", 1),
        ("wrote", 1),
        ("dumps trace.jsonl", 2),
    ]
    start = 1
    rounds_with_staged_files = 0
    for kill_at, nth in kill_points:
        temps_before = set(_temp_files(run_dir))
        seen = writer.round(start, kill_at, nth)
        assert sum(1 for s in seen if s.startswith(kill_at)) >= nth, (kill_at, seen)
        run_gen, trace_gen = _check_complete(run_dir)
        assert run_gen <= trace_gen < start + 3, (kill_at, seen)
        if set(_temp_files(run_dir)) - temps_before:
            rounds_with_staged_files += 1
        start = trace_gen + 1
    # Kills landed between staging and renaming: the renames are what kept the files whole.
    assert rounds_with_staged_files >= 3

    seen = writer.round(start, "replace run.json", pause=True)
    assert seen == [
        "dumps trace.jsonl",
        "dumps run.json",
        "replace trace.jsonl",
        "replace journal.jsonl",
        "replace events.jsonl",
        "replace run.json",
    ]
    run_gen, trace_gen = _check_complete(run_dir)
    assert trace_gen == start
    assert run_gen < start
    # Temporaries of earlier rounds may be cut short (that is what they are for); this round's
    # run.json was staged whole and never renamed.
    staged = []
    for temp in _temp_files(run_dir):
        if temp.name.startswith(".run.json."):
            with suppress(ValueError):
                staged.append(json.loads(temp.read_text(encoding="utf-8"))["stats"]["generation"])
    assert start in staged
