"""Malformed artefacts and values: a clear error with exit 2 where a traceback was (what an
outside attack found, kept out).

- a hand-edited ``run.json`` (a field missing, a value of the wrong type, not an object) is
  one error naming the file and the field for ``replay``, ``check``, ``trace show`` and
  ``trace html``;
- a corrupt ``trace.jsonl`` or ``events.jsonl`` (binary, not UTF-8, nested past any parser)
  likewise;
- a failure database row with a seed that is not a whole number from 0 is refused, never run;
- a scenario ``start`` outside 1970-2199, an output token count past 2**53 and duplicate keys
  are refused at load (duplicates with both lines); a sub-microsecond ``timeout`` runs and
  gets its report.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.scenarios import resolve
from harness.scenarios.failure_db import FailureDB
from tests.reliability._cli import invoke

pytestmark = pytest.mark.integration

BUILTIN = Path(__file__).resolve().parents[2] / "harness" / "scenarios" / "builtin"
COMMANDS = [["replay"], ["check"], ["trace", "show"], ["trace", "html", "-o", "OUT"]]
COMMAND_IDS = ["replay", "check", "trace-show", "trace-html"]


def _copy(saved: Path, where: Path) -> Path:
    shutil.copytree(saved, where)
    return where


def _args(command: list[str], run_dir: Path, tmp_path: Path) -> list[str]:
    return [str(tmp_path / "out.html") if a == "OUT" else a for a in command] + [str(run_dir)]


# -- run.json -----------------------------------------------------------------------------------

_RUN_JSON_EDITS: dict[str, tuple[Any, str]] = {
    # name: (edit, what the error names)
    "policy-missing": (lambda m: m.pop("policy"), "field 'policy'"),
    "seed-text": (lambda m: m.update(seed="abc"), "field 'seed'"),
    "seed-negative": (lambda m: m.update(seed=-7), "field 'seed'"),
    "seed-huge-float": (lambda m: m.update(seed=1e300), "field 'seed'"),
    "pending-number": (lambda m: m.update(pending=5), "field 'pending'"),
    "result-text": (lambda m: m.update(result="x"), "field 'result'"),
    "oracles-bad": (lambda m: m.update(oracles=[{"verdict": 3}]), "field 'oracles.0"),
    "list": ([], "must hold a JSON object"),
    "null": (None, "must hold a JSON object"),
    "definition-bad": (
        lambda m: m["scenario_definition"].update(budget={"wall": "soon"}),
        "scenario_definition",
    ),
}


def _run_json_cases() -> list[Any]:
    # Only a replay runs the scenario definition; the views and check need not validate it.
    return [
        pytest.param(case, command, id=f"{case}-{command_id}")
        for case in sorted(_RUN_JSON_EDITS)
        for command, command_id in zip(COMMANDS, COMMAND_IDS, strict=True)
        if case != "definition-bad" or command_id == "replay"
    ]


@pytest.mark.parametrize(("case", "command"), _run_json_cases())
def test_a_hand_edited_run_json_is_one_error_naming_the_field(
    case: str, command: list[str], saved_run: Path, tmp_path: Path
) -> None:
    edit, names = _RUN_JSON_EDITS[case]
    run_dir = _copy(saved_run, tmp_path / "run")
    meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    if callable(edit):
        edit(meta)
    else:
        meta = edit
    (run_dir / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    code, output = invoke(_args(command, run_dir, tmp_path))
    assert code == 2, output[-2000:]
    assert f"error: {run_dir / 'run.json'}" in output, output[-2000:]
    assert names in output, output[-2000:]


# -- trace.jsonl and events.jsonl ---------------------------------------------------------------

_CORRUPT = {
    "binary": bytes(range(256)) * 4,
    "not-utf8": b'{"resourceSpans": []}\n\xff\xfe\xfd\n',
    "nested": b"[" * 100_000 + b"\n",
}


def _corrupt_cases() -> list[Any]:
    # A replay compares the trace; it reads no events.
    return [
        pytest.param(kind, name, command, id=f"{kind}-{name}-{command_id}")
        for kind in sorted(_CORRUPT)
        for name in ("trace.jsonl", "events.jsonl")
        for command, command_id in zip(COMMANDS, COMMAND_IDS, strict=True)
        if name == "trace.jsonl" or command_id != "replay"
    ]


@pytest.mark.parametrize(("kind", "name", "command"), _corrupt_cases())
def test_a_corrupt_trace_or_event_file_is_one_error(
    kind: str, name: str, command: list[str], saved_run: Path, tmp_path: Path
) -> None:
    run_dir = _copy(saved_run, tmp_path / "run")
    (run_dir / name).write_bytes(_CORRUPT[kind])
    code, output = invoke(_args(command, run_dir, tmp_path))
    assert code == 2, output[-2000:]
    assert f"error: {run_dir / name}" in output, output[-2000:]


# -- the failure database -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "seed", ["abc", -7, 1e300, True], ids=["text", "negative", "1e300", "bool"]
)
def test_a_failure_database_row_with_a_bad_seed_is_refused_not_run(
    seed: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where harness run and explore look for the database
    scenario, _ = resolve("cascade")
    db = tmp_path / ".harness" / "failures"
    db.mkdir(parents=True)
    row = {
        "policy": "buggy",
        "strategy": "fifo",
        "seed": seed,
        "oracle": "o",
        "signature": "s",
        "replay": "r",
    }
    path = FailureDB(db).path_for(scenario.content_hash())
    path.write_text(json.dumps({"failures": [row]}), encoding="utf-8")
    for args in (
        ["run", "cascade", "--policy", "buggy", "--out", "runs"],
        ["explore", "cascade", "--runs", "2", "--json"],
    ):
        code, output = invoke(args)
        assert code == 2, output[-2000:]
        assert "malformed failure database file" in output
        assert "field 'failures.0.seed'" in output
        assert "s1e+300" not in output


# -- values at load -----------------------------------------------------------------------------


def _scenario_text(**changes: Any) -> str:
    data = yaml.safe_load((BUILTIN / "cascade.yaml").read_text(encoding="utf-8"))
    data.update(changes)
    return yaml.safe_dump(data)


@pytest.mark.parametrize("start", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_a_start_outside_what_a_trace_can_carry_is_refused(
    start: str, saved_run: Path, tmp_path: Path
) -> None:
    path = tmp_path / "start.yaml"
    path.write_text(_scenario_text(start=start), encoding="utf-8")
    code, output = invoke(["run", str(path), "--out", str(tmp_path / "runs")])
    assert code == 2, output[-2000:]
    assert "field 'start'" in output
    assert "1970" in output
    # A run directory that says so (hand-edited, or from an older version) is refused too.
    run_dir = _copy(saved_run, tmp_path / "run")
    meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    meta["scenario_definition"]["start"] = start
    (run_dir / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    code, output = invoke(["replay", str(run_dir)])
    assert code == 2, output[-2000:]
    assert "scenario_definition.start" in output


_TINY_TIMEOUT = """
name: tiny_timeout
description: One call whose timeout is the smallest positive number; the run lasts that long.
runtime:
  prompt: Check web1.
servers:
  ssh:
    fake: ssh
    timeout: 5.0e-324
    script: {tools: {mem_ssh: {default: {latency: 1}}}}
model:
  agents:
    main:
      turns:
        - tool_use: [{name: mem_ssh, input: {host: web1, command: uptime}}]
        - text: "done: {tool_results}"
oracles: [agents_completed]
expect: {buggy: [agents_completed], reproduces: sometimes}
"""


def test_a_sub_microsecond_run_gets_its_report(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(_TINY_TIMEOUT, encoding="utf-8")
    code, output = invoke(["run", str(path), "--json", "--out", str(tmp_path / "runs")])
    assert code == 0, output[-2000:]
    runs = [json.loads(line) for line in output.splitlines()]
    assert len(runs) == 2
    for run in runs:
        run_dir = Path(run["run_dir"])
        assert 0 < run["virtual_s"] < 1e-300  # the run is as long as the timeout
        assert (run_dir / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    code, output = invoke(["trace", "show", runs[0]["run_dir"]])
    assert code == 0, output[-2000:]


def test_a_token_count_past_two_to_the_53_is_refused_at_load(tmp_path: Path) -> None:
    text = (BUILTIN / "cascade.yaml").read_text(encoding="utf-8")
    path = tmp_path / "tokens.yaml"
    text = text.replace(
        '        - text: "A: {tool_results}"',
        '        - text: "A: {tool_results}"\n          output_tokens: 100000000000000000000000',
    )
    assert "output_tokens" in text
    path.write_text(text, encoding="utf-8")
    code, output = invoke(["run", str(path), "--out", str(tmp_path / "runs")])
    assert code == 2, output[-2000:]
    assert "out of range" in output
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "output_tokens" in t)
    assert f"{path}:{line}" in output


@pytest.mark.parametrize("twice", ["name", "ssh"])
def test_a_duplicate_key_is_refused_with_both_lines(twice: str, tmp_path: Path) -> None:
    lines = (BUILTIN / "cascade.yaml").read_text(encoding="utf-8").splitlines()
    if twice == "name":
        assert lines[0].startswith("name: ")
        lines.append("name: cascade_again")
        first, second = 1, len(lines)
    else:
        at = lines.index("  ssh:")  # under servers: a second ssh just before it
        lines.insert(at, "  ssh: {fake: ssh, timeout: 10}")
        first, second = at + 1, at + 2
    path = tmp_path / "twice.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, output = invoke(["run", str(path), "--out", str(tmp_path / "runs")])
    assert code == 2, output[-2000:]
    assert f"duplicate key '{twice}' (lines {first} and {second})" in output, output
