"""``harness fake-api serve`` as a subprocess: driven by the SDK, stopped with SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anthropic
import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from harness.telemetry.otlp_json import read_trace_file

pytestmark = pytest.mark.integration

TIMEOUT = 15.0
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
SERVE = [sys.executable, "-m", "harness", "fake-api", "serve"]
SCRIPT = """\
agents:
  parent:
    turns:
      - text: looking
        tool_use: [{name: mem_ssh, input: {host: a}}]
      - when: {tool_result_for: mem_ssh}
        text: "saw {tool_results}"
        fail: [{kind: rate_limit, retry_after: 0.01}]
  sub:
    turns:
      - text: sub done
"""


async def test_serve_answers_the_sdk_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    script = tmp_path / "script.yaml"
    script.write_text(SCRIPT)
    journal, spans = tmp_path / "journal.jsonl", tmp_path / "spans.jsonl"
    command = [*SERVE, "--script", str(script), "--journal", str(journal), "--seed", "5"]
    command += ["--spans", str(spans)]
    async with await anyio.open_process(command, stderr=subprocess.PIPE) as process:
        try:
            assert process.stdout is not None
            with anyio.fail_after(TIMEOUT):
                line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 1000)
            first = line.decode()
            assert first.startswith("listening on http://127.0.0.1:")
            url = first.removeprefix("listening on ")
            async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=2) as client:
                reply = await client.messages.create(
                    model="claude-sonnet-4-6",
                    max_tokens=20,
                    system="[agent:parent]",
                    messages=[{"role": "user", "content": "check host a"}],
                )
                tool = reply.content[1]
                assert isinstance(tool, anthropic.types.ToolUseBlock)
                sub = await client.messages.create(
                    model="claude-sonnet-4-6",
                    max_tokens=20,
                    metadata={"user_id": "sub"},
                    messages=[{"role": "user", "content": "help"}],
                    extra_headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
                )
                assert sub.content[0].type == "text"
                answer = await client.messages.create(
                    model="claude-sonnet-4-6",
                    max_tokens=20,
                    system="[agent:parent]",
                    messages=[
                        {"role": "user", "content": "check host a"},
                        {"role": "assistant", "content": [tool.model_dump(exclude_none=True)]},
                        {
                            "role": "user",
                            "content": [
                                {"type": "tool_result", "tool_use_id": tool.id, "content": "up"}
                            ],
                        },
                    ],
                )
                assert answer.content[0].type == "text"
                assert answer.content[0].text == "saw up"
            process.send_signal(signal.SIGINT)
            with anyio.fail_after(TIMEOUT):
                code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                with anyio.move_on_after(5, shield=True):
                    await process.wait()
    assert process.stderr is not None
    stderr = (await process.stderr.receive()).decode() if code != 0 else ""
    assert code == 0, stderr
    records = [json.loads(text) for text in journal.read_text().splitlines()]
    assert [(r["agent"], r["turn"], r["status"]) for r in records] == [
        ("parent", 0, 200),
        ("sub", 0, 200),
        ("parent", 1, 429),
        ("parent", 1, 200),
    ]
    assert [r["request"]["retry_count"] for r in records] == ["0", "0", "0", "1"]
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    assert records[1]["traceparent"] == f"00-{TRACE_ID}-{PARENT_ID}-01"
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)
    traced = read_trace_file(spans)
    assert [span["name"] for span in traced] == ["POST /v1/messages"] * 4
    sub_span = traced[1]
    assert sub_span["trace_id"] == TRACE_ID
    assert sub_span["parent_id"] == PARENT_ID
    assert sub_span["kind"] == 2  # SERVER
    assert sub_span["service"] == "fake-anthropic"
    assert sub_span["attributes"]["harness.fake.agent"] == "sub"


def test_bad_script_is_exit_2_naming_file_and_field(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text("agents:\n  p:\n    turns:\n      - tool_use: [{name: t, input: 5}]\n")
    done = subprocess.run(
        [*SERVE, "--script", str(script)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ")
    for part in ("bad.yaml", "agents.p.turns.0.tool_use.0.input", "(got 5)"):
        assert part in done.stderr
