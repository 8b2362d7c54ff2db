"""The stderr knob with real stdio server processes (live mode): a server that writes more to
stderr than a pipe holds blocks when nobody reads the pipe, and answers when it is drained or
inherited."""

from __future__ import annotations

import pytest

from harness.scenarios import parse_scenario
from harness.scenarios.live import run_scenario_live

pytestmark = pytest.mark.integration

SCENARIO = """
name: stderr_flood
description: a stdio server logs 256 KiB to stderr before it answers
runtime:
  prompt: go
servers:
  logs:
    fake: declared
    timeout: 20
    script:
      tools:
        tail:
          description: Tail the logs.
          default: {stderr_bytes: 262144, result: {text: "tail done"}}
policies:
  buggy: {stderr: pipe_unread, call_retries: 0}
  fixed: {stderr: drain, call_retries: 0}
oracles:
  - last_call_succeeds: {tool: tail}
expect:
  buggy: [last_call_succeeds]
budget: {virtual: 300, wall: 60}
model:
  agents:
    main:
      turns:
        - tool_use: [{name: tail, input: {}}]
        - text: "{tool_results}"
"""


@pytest.mark.parametrize(
    ("mode", "outcome"), [("pipe_unread", "timeout"), ("drain", "ok"), ("inherit", "ok")]
)
def test_a_stderr_pipe_nobody_reads_blocks_the_server(mode: str, outcome: str) -> None:
    text = SCENARIO.replace("fixed: {stderr: drain", f"fixed: {{stderr: {mode}")
    run = run_scenario_live(parse_scenario(text), policy="fixed", time_scale=0.05)
    assert [e["outcome"] for e in run.record.runtime("call_ended")] == [outcome]
