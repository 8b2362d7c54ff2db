"""Resource bounds: a wall budget bounds everything a run does, and no input makes the harness
hold unbounded memory or time (what an outside attack found, kept out).

- an alias bomb inside a free-form field (a tool call's ``input``) is refused at load, with
  file and line, before anything expands it;
- a regular expression that backtracks catastrophically, and turns full of tool calls, end
  at the run's wall budget (a watchdog ends a run stuck inside one step), reported as over
  budget; more than 256 tool calls in a turn, 20,000 in a file or 200,000 scheduled tasks are
  refused at load;
- only regular files within a stated size are read: ``/dev/zero`` as a scenario, a script or
  a ``trace.jsonl`` (a symlink) is one clear error for ``run``, ``check``, ``trace show|html``
  and ``replay``; so is a trace past the documented size;
- a fake MCP server on HTTP closes idle sessions and caps open ones;
- the views stay linear in the number of agents; the interposer frames in linear time and
  refuses a frame past its limit with a JSON-RPC error to the client.

Time bounds here are relative: CPU time (unaffected by other processes), a baseline measured
in the same test, or a bound stretched by the machine's measured load (``tests._load``).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from harness.scenarios import run_scenario, write_run
from harness.scenarios.model import load_scenario
from harness.views.model import Lane, _agent_tree_order
from tests._load import scaled
from tests.reliability._cli import invoke
from tests.reliability._signals import Command

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BUILTIN = Path(__file__).resolve().parents[2] / "harness" / "scenarios" / "builtin"


def _cascade(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((BUILTIN / "cascade.yaml").read_text(encoding="utf-8"))
    data.update(changes)
    return data


def _write(path: Path, data: dict[str, Any] | str) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def _plain_load_cpu(path: Path) -> float:
    """CPU seconds libyaml takes to load ``path`` with no bounds at all."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    started = time.process_time()
    yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    return time.process_time() - started


def _refused_quickly(args: list[str], expect: str, *, like: Path | None = None) -> str:
    """``harness ARGS`` exits 2 with ``expect`` in its error, in CPU time of the order of a
    plain parse of ``like`` measured here (a loaded machine slows both alike): refused at
    load, not after running what the file asks for."""
    baseline = _plain_load_cpu(like) if like is not None else 0.0
    started = time.process_time()
    code, output = invoke(args)
    assert code == 2, output[-2000:]
    assert expect in output, output[-2000:]
    assert "Traceback" not in output
    spent = time.process_time() - started
    assert spent < 2 * baseline + 5, f"refused after {spent:.1f} CPU s (plain load {baseline:.1f})"
    return output


# -- alias bombs and sizes at load --------------------------------------------------------------


def test_an_alias_bomb_in_a_tool_calls_input_is_refused_at_load(tmp_path: Path) -> None:
    # A free-form mapping (a tool call's input) holding a billion laughs: 9**9 values.
    lines = ["            - name: mem_ssh", "              input:", "                bomb:"]
    lines.append("                  a0: &l0 lol")
    for level in range(1, 10):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"                  a{level}: &l{level} [{refs}]")
    text = (BUILTIN / "cascade.yaml").read_text(encoding="utf-8")
    original = "        - tool_use: [{name: mem_ssh, input: {host: web1, command: du -sh /var}}]"
    assert original in text
    bomb = "        - tool_use:\n" + "\n".join(lines)
    path = _write(tmp_path / "bomb.yaml", text.replace(original, bomb))
    output = _refused_quickly(
        ["run", str(path), "--out", str(tmp_path / "runs")], "expands to more than 100,000"
    )
    assert f"{path}:" in output  # with the line


def test_twenty_thousand_tool_calls_or_200k_tasks_are_refused_at_load(tmp_path: Path) -> None:
    data = _cascade()
    data["model"]["agents"]["A"]["turns"][0]["tool_use"] = [
        {"name": "mem_ssh", "input": {"host": "web1", "command": f"du {i}"}} for i in range(20_000)
    ]
    calls = _write(tmp_path / "calls.yaml", data)
    args = ["run", str(calls), "--out", str(tmp_path / "r")]
    _refused_quickly(args, "more than 100,000 values", like=calls)
    tasks = "\n".join(
        f"    - {{name: t{i}, at: {i}, agent: main, prompt: go, context_id: General}}"
        for i in range(200_000)
    )
    text = (BUILTIN / "cascade.yaml").read_text(encoding="utf-8")
    text = text.replace("runtime:\n", f"runtime:\n  scheduled:\n{tasks}\n", 1)
    scheduled = _write(tmp_path / "tasks.yaml", text)
    _refused_quickly(["run", str(scheduled), "--out", str(tmp_path / "r")], "larger than 4 MiB")


# -- the wall budget bounds everything a run does -----------------------------------------------

_REGEX_BOMB = """
name: regex_bomb
description: A when condition whose regular expression backtracks catastrophically.
runtime:
  prompt: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"
model:
  agents:
    main:
      turns:
        - when: {matches: "(a+)+$"}
          text: never
        - text: done
oracles: [agents_completed]
expect: {buggy: [agents_completed]}
budget: {virtual: 60, wall: 2}
"""


def test_a_catastrophic_regular_expression_ends_at_the_wall_budget(tmp_path: Path) -> None:
    from harness.scenarios.runner import WATCHDOG_GRACE_S

    scenario = load_scenario(_write(tmp_path / "regex.yaml", _REGEX_BOMB))
    bound = scaled(scenario.budget.wall + WATCHDOG_GRACE_S + 2.0)
    started = time.monotonic()
    outcome = run_scenario(scenario, policy="fixed")
    assert time.monotonic() - started <= bound
    assert outcome.record.hung
    assert "wall budget (2 s) ran out inside one step, in search" in outcome.record.pending[0]
    run_dir = write_run(outcome, scenario, tmp_path / "runs")
    assert json.loads((run_dir / "run.json").read_text())["hung"] is True


def test_turns_full_of_tool_calls_end_at_the_wall_budget(tmp_path: Path) -> None:
    data = _cascade(budget={"virtual": 1800, "wall": 1})
    calls = [{"name": "mem_ssh", "input": {"host": "web1", "command": "du -sh /var"}}]
    turns = data["model"]["agents"]["A"]["turns"]
    turns[0]["tool_use"] = calls * 257
    over = _write(tmp_path / "over.yaml", data)
    output = _refused_quickly(["run", str(over), "--out", str(tmp_path / "r")], "at most 256")
    assert "field 'model.agents.A.turns.0.tool_use'" in output
    # Twenty turns of 256 calls: many seconds of work, in rounds no larger than a turn.
    turns[:1] = [{"tool_use": calls * 256} for _ in range(20)]
    scenario = load_scenario(_write(tmp_path / "calls.yaml", data))
    started = time.monotonic()
    outcome = run_scenario(scenario, policy="fixed")
    # The budget, a round of a turn past it, and writing the record of what was done.
    assert time.monotonic() - started <= scaled(1 + 1 + 4.0)
    assert outcome.record.hung, outcome.outcome


# -- files that are not regular files, or too large ---------------------------------------------


def test_a_scenario_or_script_that_is_not_a_regular_file_is_one_error(tmp_path: Path) -> None:
    _refused_quickly(["run", "/dev/zero", "--out", str(tmp_path / "r")], "regular file")
    text = (BUILTIN / "cascade.yaml").read_text(encoding="utf-8")
    start = text.index("    script:\n")
    path = _write(
        tmp_path / "zero.yaml",
        text[:start] + "    script: /dev/zero\n" + text[text.index("model:") :],
    )
    _refused_quickly(["run", str(path), "--out", str(tmp_path / "r")], "regular file")
    big = _write(tmp_path / "big.yaml", text + "#" + "x" * (5 << 20) + "\n")
    _refused_quickly(["run", str(big), "--out", str(tmp_path / "r")], "larger than 4 MiB")


def test_a_fake_api_script_is_read_within_the_same_bounds(tmp_path: Path) -> None:
    serve = ["fake-api", "serve", "--port", "0", "--script"]
    _refused_quickly([*serve, "/dev/zero"], "regular file")
    big = _write(tmp_path / "big.yaml", "agents: {}\n#" + "x" * (5 << 20) + "\n")
    _refused_quickly([*serve, str(big)], "larger than 4 MiB")
    # A billion laughs: 9**9 values, were every alias expanded.
    bomb = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    bomb += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = _write(tmp_path / "bomb.yaml", "\n".join(bomb) + "\nagents: {}\n")
    _refused_quickly([*serve, str(path)], "aliases")
    twice = _write(tmp_path / "twice.yaml", "agents: {}\nagents: {}\n")
    _refused_quickly([*serve, str(twice)], "duplicate key 'agents' (lines 1 and 2)")
    secret = _write(tmp_path / "passwd", "root:x:0:0:SENTINEL-FILE-CONTENT:/root:/bin/bash\n")
    assert "SENTINEL" not in _refused_quickly([*serve, str(secret)], "mapping")


def _copy_run(saved: Path, where: Path) -> Path:
    where.mkdir()
    for file in saved.iterdir():
        (where / file.name).write_bytes(file.read_bytes())
    return where


@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["trace", "show"],
        ["trace", "html", "-o", "OUT"],
        ["replay"],
        ["trace", "push", "--endpoint", "http://127.0.0.1:9", "--timeout", "1"],
    ],
    ids=["check", "trace-show", "trace-html", "replay", "trace-push"],
)
def test_a_trace_that_is_dev_zero_or_too_large_is_one_error(
    command: list[str], saved_run: Path, tmp_path: Path
) -> None:
    linked = _copy_run(saved_run, tmp_path / "linked")
    (linked / "trace.jsonl").unlink()
    (linked / "trace.jsonl").symlink_to("/dev/zero")
    args = [str(tmp_path / "out.html") if a == "OUT" else a for a in command]
    _refused_quickly([*args, str(linked)], "regular file")
    large = _copy_run(saved_run, tmp_path / "large")
    with (large / "trace.jsonl").open("r+b") as fh:
        fh.truncate(65 << 20)  # sparse: past the limit without writing it
    output = _refused_quickly([*args, str(large)], "larger than 64 MiB")
    assert "--otlp-endpoint" in output  # what to do instead


# -- fake MCP over HTTP: sessions expire and are capped -----------------------------------------


def _initialize(client: httpx2.Client, url: str) -> httpx2.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "reliability", "version": "1"},
        },
    }
    headers = {"accept": "application/json, text/event-stream"}
    return client.post(url, json=body, headers=headers)


def _list_tools(client: httpx2.Client, url: str, session: str) -> int:
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-session-id": session,
        "mcp-protocol-version": "2025-06-18",
    }
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    return client.post(url, json=body, headers=headers).status_code


def _serving(tmp_path: Path, *, idle: float, cap: int) -> tuple[Command, str]:
    limits = ["--session-idle-timeout", str(idle), "--max-sessions", str(cap)]
    cmd = Command(["fake-mcp", "ssh", "--transport", "http", "--port", "0", *limits], cwd=tmp_path)
    assert cmd.proc.stdout is not None
    line = cmd.proc.stdout.readline().decode()
    assert line.startswith("listening on "), line
    return cmd, line.removeprefix("listening on ").strip()


def test_fake_mcp_http_sessions_are_capped(tmp_path: Path, reaper: None) -> None:
    cmd, url = _serving(tmp_path, idle=600, cap=5)
    try:
        with httpx2.Client(timeout=60) as client:
            opened = [_initialize(client, url) for _ in range(5)]
            assert [r.status_code for r in opened] == [200] * 5
            assert _initialize(client, url).status_code == 503
            assert _list_tools(client, url, opened[0].headers["mcp-session-id"]) == 200
    finally:
        cmd.kill()


def test_fake_mcp_http_sessions_expire_when_idle(tmp_path: Path, reaper: None) -> None:
    idle = 1.0
    cmd, url = _serving(tmp_path, idle=idle, cap=5)
    try:
        with httpx2.Client(timeout=60) as client:
            sessions = [_initialize(client, url).headers["mcp-session-id"] for _ in range(5)]
            deadline = time.monotonic() + scaled(60)
            for session in sessions:
                # A request to a live session keeps it alive for another idle period: ask
                # less often than that, so an idle session is seen closed.
                while _list_tools(client, url, session) != 404:
                    assert time.monotonic() < deadline, "idle sessions were never closed"
                    time.sleep(idle * 1.5)
            fresh = _initialize(client, url)
            assert fresh.status_code == 200
            assert _list_tools(client, url, fresh.headers["mcp-session-id"]) == 200
    finally:
        cmd.kill()


# -- linear time where it was not ---------------------------------------------------------------


def _lanes(count: int, *, chain: bool = False) -> list[Lane]:
    lanes = [Lane(kind="agent", key="a0", name="main")]
    for i in range(1, count):
        parent = f"s{i - 1}" if chain and i > 1 else "main"
        lanes.append(Lane(kind="agent", key=f"a{i}", name=f"s{i}", parent=parent))
    return lanes


def _cpu(work: Any) -> float:
    """The least CPU time of five runs of ``work`` (garbage collection off while timed)."""
    times = []
    gc.disable()
    try:
        for _ in range(5):
            started = time.process_time()
            work()
            times.append(time.process_time() - started)
    finally:
        gc.enable()
    return min(times)


def test_the_agent_tree_order_is_linear_and_takes_any_depth() -> None:
    small, large = _lanes(2000), _lanes(8000)
    ordered = _agent_tree_order(large)
    assert [lane.key for lane in ordered] == [lane.key for lane in large]
    # Four times the agents, against the same code on a quarter: linear is ~4x, quadratic
    # 16x, the cubic order this replaced ~64x (300 agents took seconds).
    base = _cpu(lambda: _agent_tree_order(small))
    big = _cpu(lambda: _agent_tree_order(large))
    assert big <= 12 * base, (base, big)
    chain = _lanes(5000, chain=True)  # deeper than Python's recursion limit
    assert [lane.key for lane in _agent_tree_order(chain)] == [lane.key for lane in chain]


def _relay(frames: list[bytes], *, extra: list[str]) -> list[dict[str, Any]]:
    """Send ``frames`` through ``harness interpose -- cat`` (a server that echoes its input);
    return what came back, as JSON."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "interpose", *extra, "--", "cat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    try:
        out, err = proc.communicate(b"".join(frames), timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("the interposer did not relay the frames in time") from None
    assert proc.returncode == 0, err.decode()[-2000:]
    return [json.loads(line) for line in out.splitlines()]


def _frame(request_id: int, size: int) -> bytes:
    head = f'{{"jsonrpc":"2.0","id":{request_id},"method":"ping","params":{{"pad":"'.encode()
    return head + b"x" * max(0, size - len(head) - 4) + b'"}}\n'


def test_the_interposer_refuses_a_frame_past_its_limit_and_relays_the_next() -> None:
    frames = [_frame(1, 4 << 20), _frame(2, 1000)]
    replies = _relay(frames, extra=["--max-frame-bytes", str(1 << 20)])
    assert replies[0]["id"] == 1
    assert replies[0]["error"]["code"] == -32600
    assert "too large" in replies[0]["error"]["message"]
    assert replies[1]["id"] == 2  # echoed by the server: the relay goes on
    assert replies[1]["method"] == "ping"


def _children_cpu() -> float:
    """CPU seconds of this process's reaped children (the interposer and its ``cat``)."""
    usage = os.times()
    return usage.children_user + usage.children_system


def test_the_interposer_relays_a_large_frame_in_linear_time() -> None:
    size = 24 << 20
    # The baseline does the same work: the same bytes, in frames of 64 KiB.
    small = [_frame(i, 64 << 10) for i in range(size // (64 << 10))]
    before = _children_cpu()
    replies = _relay(small, extra=[])
    baseline = _children_cpu() - before
    assert len(replies) == len(small)
    before = _children_cpu()
    replies = _relay([_frame(1, size)], extra=[])
    one_frame = _children_cpu() - before
    assert [r["id"] for r in replies] == [1]
    # Quadratic re-buffering copied the frame once per read (a 64 MiB frame took a minute).
    assert one_frame <= 3 * baseline, (one_frame, baseline)
