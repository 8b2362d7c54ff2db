"""A run killed or crashed while writing its directory never leaves a truncated ``trace.jsonl``
line or a half-written ``run.json``: every file is written to a temporary file and renamed.

- in process: a value that cannot be serialized, halfway through ``journal.jsonl``, fails the
  write; the previous run's files stay byte for byte, and the failed write leaves neither a
  temporary file nor its own (empty) run directory behind;
- in a writer process: ``write_run`` runs over and over into one output directory (each run
  in a directory of its own) and is SIGKILLed at a different step each round (before each
  rename, after a whole run); after every kill every file present parses, and a directory
  with a ``run.json`` has every data file of that same run; one round stops the writer just
  before ``run.json`` is renamed, with everything staged.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from harness.scenarios import resolve, run_scenario, write_run
from harness.scenarios.failure_db import FailureDB, FailureEntry

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


def _check_complete(run_dir: Path) -> tuple[int | None, int | None]:
    """Parse every file of ``run_dir``; return the generations of run.json and trace.jsonl
    (None for a file a kill kept from being renamed into place)."""
    names = {p.name for p in _final_files(run_dir)}
    assert names <= {"events.jsonl", "journal.jsonl", "report.html", "run.json", "trace.jsonl"}
    if "run.json" in names:
        # run.json is renamed last: its directory has every data file of the run.
        assert {"events.jsonl", "journal.jsonl", "trace.jsonl"} <= names, names
    for name in ("trace.jsonl", "journal.jsonl", "events.jsonl"):
        if name not in names:
            continue
        text = (run_dir / name).read_text(encoding="utf-8")
        assert text.endswith("\n"), f"{name} ends inside a line"
        rows = [json.loads(line) for line in text.splitlines()]
        assert rows, name
    run_gen = trace_gen = None
    if "run.json" in names:
        meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        assert meta["scenario"] == "cascade"
        run_gen = int(meta["stats"]["generation"])
    if "report.html" in names:
        assert (run_dir / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    for temp in _temp_files(run_dir):
        assert temp.name.startswith("."), temp.name
    if "trace.jsonl" in names:
        trace_gen = _generation(json.loads((run_dir / "trace.jsonl").read_text(encoding="utf-8")))
    return run_gen, trace_gen


def _check_all(root: Path) -> list[tuple[Path, int | None, int | None]]:
    """``_check_complete`` on every run directory under ``root``, oldest generation first; a
    complete directory holds one run (run.json and trace.jsonl of the same generation)."""
    found = []
    for run_dir in (d for d in root.iterdir() if d.is_dir()):
        run_gen, trace_gen = _check_complete(run_dir)
        if run_gen is not None:
            assert run_gen == trace_gen, run_dir.name
        found.append((run_dir, run_gen, trace_gen))
    return sorted(found, key=lambda f: -1 if f[2] is None else f[2])


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
    assert list(tmp_path.iterdir()) == [run_dir]


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


# The writer: a process that makes one sim run and writes it again and again into one run
# directory (each generation with its number in the trace and in run.json's stats, and 20000
# small trace attributes so that serializing the trace takes a while), announcing when it starts
# to serialize the trace or run.json and before every rename. The test SIGKILLs it at a chosen
# announcement. Every round is a fresh process (no fork of a process that ran an event loop), and
# every read has a deadline, so a stuck writer fails the test with what it saw instead of hanging.
_WRITER = r"""
import json, os, signal, sys
from pathlib import Path
from harness.scenarios import resolve, run_scenario, write_run

root, first, pause_at = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
scenario, _ = resolve("cascade")
outcome = run_scenario(scenario, policy="buggy", seed=0)
span = outcome.trace["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
filler = [{"key": f"pad.{i}", "value": {"stringValue": "x" * 64}} for i in range(20000)]
base_attributes = list(span["attributes"]) + filler

def generation(n):
    marker = {"key": "padding", "value": {"stringValue": f"{n}:"}}
    span["attributes"] = [*base_attributes, marker]
    outcome.stats["generation"] = n

if first == 0:
    generation(0)
    print(f"ready {write_run(outcome, scenario, root)}", flush=True)
    sys.exit(0)
real_replace, real_dumps = os.replace, json.dumps
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
print("started", flush=True)
n = first
while True:
    generation(n)
    write_run(outcome, scenario, root)
    announce(f"wrote {n}")
    n += 1
"""

_READ_DEADLINE_S = 45.0


class _Writer:
    """Spawns writer processes on one run directory and kills them at chosen steps."""

    def __init__(self, root: Path) -> None:
        self.root = root
        proc, lines = self._spawn(0)
        try:
            first = self._line(proc, lines, [])
            assert first.startswith("ready "), first
            assert proc.wait(timeout=_READ_DEADLINE_S) == 0
        finally:
            self._stop(proc)
        self.run_dir = Path(first.split(" ", 1)[1])

    def _spawn(
        self, first: int, pause_at: str = "-"
    ) -> tuple[subprocess.Popen[str], queue.Queue[str | None]]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(self.root), str(first), pause_at],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line.strip())
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        return proc, lines

    @staticmethod
    def _line(proc: subprocess.Popen[str], lines: queue.Queue[str | None], seen: list[str]) -> str:
        try:
            line = lines.get(timeout=_READ_DEADLINE_S)
        except queue.Empty:
            raise AssertionError(
                f"the writer said nothing for {_READ_DEADLINE_S} s; it said {seen}"
            ) from None
        assert line is not None, f"the writer exited ({proc.poll()}) after {seen}"
        return line

    @staticmethod
    def _stop(proc: subprocess.Popen[str]) -> None:
        with suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=_READ_DEADLINE_S)
        assert proc.stdout is not None
        proc.stdout.close()

    def round(self, start: int, kill_at: str, nth: int = 1, *, pause: bool = False) -> list[str]:
        """Start a writer at generation ``start`` and SIGKILL it at its ``nth`` announcement
        starting with ``kill_at`` (``pause``: the writer stops there and waits for the kill),
        or after its third whole run. Returns every announcement the writer made."""
        proc, lines = self._spawn(start, kill_at if pause else "-")
        seen: list[str] = []
        try:
            assert self._line(proc, lines, seen) == "started"
            while True:
                line = self._line(proc, lines, seen)
                seen.append(line)
                hits = sum(1 for s in seen if s.startswith(kill_at))
                if hits == nth or sum(1 for s in seen if s.startswith("wrote")) == 3:
                    break
            # The writer is stopped mid-step: it keeps running until the signal lands.
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=_READ_DEADLINE_S) == -signal.SIGKILL
        finally:
            self._stop(proc)
        while (rest := lines.get(timeout=_READ_DEADLINE_S)) is not None:
            seen.append(rest)
        return seen


@pytest.fixture
def writer(tmp_path: Path) -> _Writer:
    return _Writer(tmp_path)


# Ten writer processes, each importing the harness and making a sim run: longer than the
# suite's default per-test limit on a loaded machine; every read above has its own deadline.
@pytest.mark.timeout(300)
def test_a_writer_killed_at_any_step_leaves_only_complete_files(writer: _Writer) -> None:
    root = writer.root
    assert _check_all(root) == [(writer.run_dir, 0, 0)]
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
        temps_before = {t for d in root.iterdir() for t in _temp_files(d)}
        # Just before a rename the writer waits for the kill (a racing kill often landed
        # after the rename, and then proved nothing about it); elsewhere it races.
        seen = writer.round(start, kill_at, nth, pause=kill_at.startswith("replace"))
        assert sum(1 for s in seen if s.startswith(kill_at)) >= nth, (kill_at, seen)
        found = _check_all(root)
        generations = [g for _, _, g in found if g is not None]
        assert max(generations) < start + 3, (kill_at, seen)
        if {t for d in root.iterdir() for t in _temp_files(d)} - temps_before:
            rounds_with_staged_files += 1
        start = max(generations) + 1
    # Kills landed between staging and renaming: the renames are what kept the files whole.
    assert rounds_with_staged_files >= 3

    seen = writer.round(start, "replace run.json", pause=True)
    assert seen == [
        "dumps run.json",  # validated against its model before anything is staged
        "dumps trace.jsonl",
        "replace trace.jsonl",
        "replace journal.jsonl",
        "replace events.jsonl",
        "replace run.json",
    ]
    newest, run_gen, trace_gen = _check_all(root)[-1]
    assert trace_gen == start
    assert run_gen is None
    # This round's run.json was staged whole and never renamed.
    staged = [
        json.loads(temp.read_text(encoding="utf-8"))["stats"]["generation"]
        for temp in _temp_files(newest)
        if temp.name.startswith(".run.json.")
    ]
    assert staged == [start]
