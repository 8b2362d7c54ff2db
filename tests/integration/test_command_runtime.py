"""An agent process under test in live mode (``runtime: {command: [...]}``): what it is handed
(environment, MCP config file, argv placeholders, prompt on stdin), and what is recorded of it
(stdout as the answer, exit status, stderr tail, a hang ended by the watchdog, a server process
it left behind, found by the run's tag and ended)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness.scenarios import parse_scenario
from harness.scenarios.live import run_scenario_live
from harness.scenarios.rig import FAKE_API_KEY

pytestmark = pytest.mark.integration

AGENT = Path(__file__).with_name("agents") / "probe_agent.py"

SCENARIO = f"""
name: probe_agent
description: Three tasks of an agent process at once; one answers, one crashes, one hangs.
runtime:
  command: ["{{python}}", "{AGENT}", --config, "{{mcp_config}}", --prompt, "{{prompt}}"]
  env: {{PROBE_KNOB: base}}
  prompt: hello there
  agents: {{main: {{}}, worker: {{}}}}
  scheduled:
    - {{name: crash, at: 0, agent: worker, context_id: Blog, scope: all, prompt: crash now}}
    - {{name: hang, at: 0, agent: worker, context_id: Blog, prompt: hang now}}
policies:
  fixed: {{env: {{PROBE_KNOB: fixed}}}}
budget: {{virtual: 60, wall: 10}}
servers:
  ssh: {{fake: ssh}}
model:
  agents: {{main: {{turns: [{{text: unused}}]}}}}
oracles: [tasks_answered, no_leaked_processes, api_requests_valid]
expect: {{buggy: [tasks_answered]}}
"""


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_an_agent_process_is_handed_its_world_and_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "a-real-credential")
    outcome = run_scenario_live(parse_scenario(SCENARIO), policy="fixed", seed=0)
    result = outcome.record.result
    main = result["main"]
    assert main["stop"] == "end_turn", main
    assert main["exit_status"] == 0
    seen = json.loads(main["text"])
    config = seen["argv"][1]
    assert seen["argv"] == ["--config", config, "--prompt", "hello there"]
    assert config.endswith("mcp.json")
    assert seen["stdin"] == "hello there"
    env = seen["env"]
    assert env["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")
    assert env["ANTHROPIC_API_KEY"] == FAKE_API_KEY
    assert env["ANTHROPIC_AUTH_TOKEN"] is None  # no real credential reaches the agent
    assert env["PROBE_KNOB"] == "fixed"  # the policy's env over the runtime's
    assert env["HARNESS_PROMPT"] == "hello there"
    assert (env["HARNESS_AGENT"], env["HARNESS_TASK"]) == ("main", "main")
    assert seen["servers"] == {"ssh": ["args", "command", "env"]}

    crash = result["tasks"]["crash"]
    assert crash["exit_status"] == 3
    assert crash["stop"] == "error"
    assert crash["stderr_tail"] == ["loading the model", "boom: the tool loop broke"]
    assert crash["text"].startswith("half an answer")  # bytes that are not UTF-8, replaced

    hang = result["tasks"]["hang"]
    assert hang["hung"] is True
    assert hang["exit_status"] is None
    assert "wall budget" in hang["error"]
    left = int(hang["text"])
    assert _gone(left), f"the server process {left} the agent left behind is still alive"
    assert outcome.record.hung

    verdicts = {v.name: v for v in outcome.verdicts}
    assert verdicts["tasks_answered"].fails
    assert "Task crash did not answer: the agent process exited with status 3" in (
        verdicts["tasks_answered"].explanation
    )
    assert verdicts["no_leaked_processes"].fails
    assert any(f"server process {left}" in str(e) for e in verdicts["no_leaked_processes"].evidence)
    assert verdicts["api_requests_valid"].holds
    # A process that crashed or hung is an error of the runtime, named where it happened.
    assert outcome.outcome == "error"
    assert outcome.error == (
        "task crash: the agent process exited with status 3; "
        "its stderr ended: boom: the tool loop broke"
    )


ROOT = Path(__file__).resolve().parents[2]


def test_the_minimal_agent_adapter_reproduces_the_cascade_live() -> None:
    from harness.scenarios.model import load_scenario

    scenario = load_scenario(ROOT / "examples" / "minimal_agent" / "cascade.yaml")
    outcome = run_scenario_live(scenario, policy="buggy", seed=0)
    verdicts = {v.name: v.status for v in outcome.verdicts}
    assert outcome.outcome == "reproduced", [v.to_dict() for v in outcome.verdicts]
    # In live mode the servers' records are put on the run's clock, so turns and calls match.
    assert verdicts["sibling_results_kept"] == "fails"
    assert verdicts["no_teardown_under_calls"] == "holds"
    events = [e for es in outcome.record.server_events.values() for e in es]
    assert events
    assert all(e["clock"] == "run" for e in events)
    assert outcome.record.result["main"]["text"].startswith("A tool failed")


def test_claude_code_keeps_the_sibling_result_live() -> None:
    sdk = pytest.importorskip(
        "claude_agent_sdk",
        reason="Claude Code is not installed (pip install -e '.[fidelity]' bundles its CLI)",
    )
    if not (Path(sdk.__file__).parent / "_bundled" / "claude").is_file():
        pytest.skip("claude-agent-sdk has no bundled Claude Code CLI on this platform")
    from harness.scenarios.model import load_scenario

    scenario = load_scenario(ROOT / "examples" / "claude_code" / "cascade.yaml")
    outcome = run_scenario_live(scenario, policy="fixed", seed=0)
    assert outcome.outcome == "held", [v.to_dict() for v in outcome.verdicts]
    assert "b: up 12 days" in outcome.record.result["main"]["text"]


def test_langgraph_loses_the_sibling_result_live() -> None:
    python = ROOT / "examples" / "langgraph" / ".venv" / "bin" / "python"
    if not python.exists():
        pytest.skip(
            "the LangGraph example's environment is not set up (bash examples/langgraph/setup.sh)"
        )
    from harness.scenarios.model import load_scenario

    scenario = load_scenario(ROOT / "examples" / "langgraph" / "cascade.yaml")
    outcome = run_scenario_live(scenario, policy="buggy", seed=0)
    # The run crashes (exit 1): an error, never a reproduction, though the oracle saw the loss.
    assert outcome.outcome == "error", [v.to_dict() for v in outcome.verdicts]
    assert outcome.record.result["main"]["exit_status"] == 1
    assert "exited with status 1" in (outcome.error or "")
    assert next(v for v in outcome.verdicts if v.name == "sibling_results_kept").fails
