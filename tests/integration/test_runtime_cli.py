"""``harness agent run`` as a user runs it: a subprocess, a config file, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.telemetry.otlp_json import read_trace_file

pytestmark = pytest.mark.integration


def _harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_agent_run_prints_the_answer_and_writes_outputs(tmp_path: Path) -> None:
    model = {
        "agents": {
            "main": {
                "turns": [
                    {"tool_use": [{"name": "traffic_status", "input": {"route": "A1"}}]},
                    {"text": "Traffic: {tool_results}"},
                ]
            }
        }
    }
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(model))
    config = {
        "api": {"fake_script": "model.yaml"},
        "servers": {"traffic": {"fake": "traffic"}},
        "prompt": "How is the A1?",
    }
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    proc = _harness("agent", "run", str(tmp_path / "agent.yaml"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Traffic: ")
    assert "A1" in proc.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["main"]["stop"] == "end_turn"
    kinds = [json.loads(line)["kind"] for line in (out / "events.jsonl").read_text().splitlines()]
    assert kinds[0] == "agent_started"
    assert "call_started" in kinds
    journal = (out / "journal.jsonl").read_text().splitlines()
    assert len(journal) == 2
    spans = read_trace_file(out / "trace.jsonl")
    names = [s["name"] for s in spans]
    assert "invoke_agent main" in names
    assert "execute_tool traffic_status" in names
    assert {s["service"] for s in spans} >= {
        "harness-runtime",
        "fake-anthropic",
        "fake-mcp-traffic",
    }
    assert len({s["trace_id"] for s in spans}) == 1
    # The trace is a record the other commands read.
    checked = _harness("check", str(out / "trace.jsonl"), "--oracle", "agents_completed")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_agent_run_writes_the_spans_of_subprocess_servers(tmp_path: Path) -> None:
    model = {
        "agents": {
            "main": {
                "turns": [
                    {"tool_use": [{"name": "traffic_status", "input": {"route": "A1"}}]},
                    {"text": "done"},
                ]
            }
        }
    }
    config = {
        "api": {"fake_script": model},
        "servers": {"traffic": {"fake": "traffic", "transport": "stdio"}},
        "prompt": "How is the A1?",
    }
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    proc = _harness("agent", "run", str(tmp_path / "agent.yaml"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    spans = read_trace_file(out / "trace.jsonl")
    served = [s for s in spans if s["service"] == "fake-mcp-traffic" and s["kind"] == 2]
    assert any(s["name"].startswith("tools/call") for s in served)
    assert len({s["trace_id"] for s in spans}) == 1


def test_agent_run_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("policies:\n  reconnect: sometimes\n")
    proc = _harness("agent", "run", str(path), "--prompt", "hi")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{path}:2" in proc.stderr
    assert "policies.reconnect" in proc.stderr
    assert "'sometimes'" in proc.stderr


def test_agent_run_bad_inline_chat_fixture_names_the_config_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "servers:\n  chat:\n    fake: chat\n    chat_fixture:\n      contexts:\n"
        "        General: [{at: soon, author: a, text: x}]\n"
    )
    proc = _harness("agent", "run", str(path), "--prompt", "hi")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{path}:6" in proc.stderr
    assert "servers.chat.chat_fixture.contexts.General.0.at" in proc.stderr


def test_agent_run_failing_agent_exits_1_with_its_cause(tmp_path: Path) -> None:
    # One scripted turn: the second request finds the script exhausted, a 400 from the fake.
    turns = [{"tool_use": [{"name": "traffic_status", "input": {"route": "A1"}}]}]
    (tmp_path / "model.yaml").write_text(yaml.safe_dump({"agents": {"main": {"turns": turns}}}))
    config = {
        "api": {"fake_script": "model.yaml", "max_retries": 0},
        "servers": {"traffic": {"fake": "traffic"}},
        "prompt": "hi",
    }
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(config))
    proc = _harness("agent", "run", str(tmp_path / "agent.yaml"))
    assert proc.returncode == 1
    assert "main: failed (invalid_request_error)" in proc.stdout
    assert "Traceback" not in proc.stderr
