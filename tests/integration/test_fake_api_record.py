"""``fake-api record``: a client's session through the recording proxy to an upstream Messages
API (a second fake here), then replayed by the fake from the written script with the same
content, JSON and SSE, through the real SDK."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anthropic
import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from fake_servers.anthropic import Agent, FakeAnthropic, ModelScript, RateLimit, ToolCall, Turn
from fake_servers.anthropic._serve import serve_app
from fake_servers.anthropic.record import Recorder

pytestmark = pytest.mark.integration

MODEL = "claude-sonnet-4-6"
KEY = "sk-ant-api03-recordedKeyValue0123456789abcdef"
THINK = {"type": "enabled", "budget_tokens": 1024}


def upstream_script() -> ModelScript:
    return ModelScript(
        agents={
            "default": Agent(
                turns=[
                    Turn(
                        thinking="Look at host a.",
                        text="Checking {agent} hosts.",
                        tool_use=[ToolCall(name="mem_ssh", input={"host": "a", "n": [1, 2]})],
                    ),
                    Turn(text="Host a: {tool_results}", output_tokens=42),
                ]
            ),
            "sub": Agent(turns=[Turn(text="sub answer with unicode: žluťoučký ✓")]),
        },
        default_agent="default",
    )


Call = Callable[[anthropic.AsyncAnthropic], Awaitable[Any]]


async def session(client: anthropic.AsyncAnthropic) -> list[dict[str, Any]]:
    """The client's session: JSON, then a streamed tool-loop follow-up, then a subagent."""
    history: list[dict[str, Any]] = [{"role": "user", "content": "check host a"}]
    first = await client.messages.create(
        model=MODEL,
        max_tokens=4096,
        messages=history,
        thinking=THINK,  # type: ignore[arg-type]
    )
    blocks = [b.model_dump(exclude_none=True) for b in first.content]
    use = next(b for b in blocks if b["type"] == "tool_use")
    history += [
        {"role": "assistant", "content": blocks},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": "load 0.2"}],
        },
    ]
    async with client.messages.stream(
        model=MODEL,
        max_tokens=4096,
        messages=history,
        thinking=THINK,  # type: ignore[arg-type]
    ) as stream:
        second = await stream.get_final_message()
    third = await client.messages.create(
        model=MODEL,
        max_tokens=64,
        system="[agent:sub] you are a subagent",
        messages=[{"role": "user", "content": "help"}],
    )
    return [
        {
            "content": m.model_dump()["content"],
            "stop_reason": m.stop_reason,
            "output": m.usage.output_tokens,
        }
        for m in (first, second, third)
    ]


async def test_record_then_replay_gives_the_same_content(tmp_path: Path) -> None:
    out = tmp_path / "session.yaml"
    upstream = FakeAnthropic(upstream_script())
    upstream.inject(RateLimit(retry_after=0), agent="sub")
    async with upstream.serve() as upstream_url:
        recorder = Recorder(upstream_url, out)
        try:
            async with (
                serve_app(recorder, {}, host="127.0.0.1", port=0) as proxy_url,
                anthropic.AsyncAnthropic(base_url=proxy_url, api_key=KEY, max_retries=2) as client,
            ):
                recorded = await session(client)
        finally:
            await recorder.aclose()
    assert [r.status for r in upstream.journal.records] == [200, 200, 429, 200]
    text = out.read_text()
    assert KEY not in text
    script = ModelScript.load(out)
    assert script.agents["sub"].turns[0].fail == [RateLimit(retry_after=0)]
    replayer = FakeAnthropic(script)
    async with replayer.async_client(max_retries=2) as client:
        replayed = await session(client)
    assert replayed == recorded
    # The rate limit was replayed: the SDK retried the subagent's request once more.
    assert [r.status for r in replayer.journal.records] == [200, 200, 429, 200]


async def test_secrets_in_answers_are_redacted(tmp_path: Path) -> None:
    out = tmp_path / "session.yaml"
    secret = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    upstream = FakeAnthropic(ModelScript(agents={"a": Agent(turns=[Turn(text=f"token {secret}")])}))
    async with upstream.serve() as upstream_url:
        recorder = Recorder(upstream_url, out)
        try:
            async with (
                serve_app(recorder, {}, host="127.0.0.1", port=0) as proxy_url,
                anthropic.AsyncAnthropic(base_url=proxy_url, api_key=KEY, max_retries=0) as client,
            ):
                reply = await client.messages.create(
                    model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
                )
        finally:
            await recorder.aclose()
    assert reply.content[0].text == f"token {secret}"  # type: ignore[union-attr]
    written = out.read_text()
    assert secret not in written
    assert "[redacted secret]" in written


async def test_record_command_prints_its_url_and_writes_the_script(tmp_path: Path) -> None:
    out = tmp_path / "s.yaml"
    upstream = FakeAnthropic(ModelScript.default())
    async with upstream.serve() as upstream_url:
        command = [
            sys.executable,
            "-m",
            "harness",
            "fake-api",
            "record",
            "--upstream",
            upstream_url,
        ]
        command += ["--out", str(out)]
        async with await anyio.open_process(command, stderr=subprocess.PIPE) as process:
            try:
                assert process.stdout is not None
                with anyio.fail_after(30):
                    line = await BufferedByteReceiveStream(process.stdout).receive_until(
                        b"\n", 1000
                    )
                url = line.decode().split()[2]
                async with anthropic.AsyncAnthropic(
                    base_url=url, api_key=KEY, max_retries=0
                ) as client:
                    await client.messages.create(
                        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
                    )
            finally:
                process.terminate()
                with anyio.fail_after(15):
                    assert await process.wait() == 0
    assert (
        ModelScript.load(out).agents["default"].turns[0].text
        == "Hello from the fake Anthropic API."
    )
