"""The fake API served on loopback (uvicorn in a task) to the real SDK: drops and stream cuts."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from fake_servers.anthropic import (
    Agent,
    ConnectionDrop,
    FakeAnthropic,
    ModelScript,
    StreamCut,
    ToolCall,
    Turn,
)
from harness.errors import ConfigError

pytestmark = pytest.mark.integration

KWARGS = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "x"}],
}


def script() -> ModelScript:
    long_text = "a streamed answer long enough for several text deltas"
    return ModelScript(
        agents={
            "a": Agent(
                turns=[
                    Turn(text="first"),
                    Turn(
                        text=long_text,
                        tool_use=[ToolCall(name="t", input={"k": "v"})],
                        fail=[StreamCut(after_events=4)],
                    ),
                ]
            )
        }
    )


async def test_loopback_drop_and_stream_cut_reach_the_sdk_as_broken_connections() -> None:
    fake = FakeAnthropic(script())
    async with fake.serve(host="127.0.0.1", port=0) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert not base_url.endswith(":0")
        async with anthropic.AsyncAnthropic(
            base_url=base_url, api_key="k", max_retries=0
        ) as client:
            fake.inject(ConnectionDrop())
            with pytest.raises(anthropic.APIConnectionError) as dropped:
                await client.messages.create(**KWARGS)  # type: ignore[arg-type]
            assert isinstance(dropped.value.__cause__, httpx2.RemoteProtocolError)
            reply = await client.messages.create(**KWARGS)  # type: ignore[arg-type]
            assert reply.content[0].type == "text"

            seen: list[str] = []

            async def consume() -> None:
                async with client.messages.stream(**KWARGS) as stream:  # type: ignore[arg-type]
                    async for event in stream:
                        seen.append(event.type)

            with pytest.raises(httpx2.RemoteProtocolError):
                await consume()
            # Over a socket the client sees the events sent before the cut.
            assert (
                seen[:2] == ["message_start", "content_block_start"] or seen[0] == "message_start"
            )
            assert "message_stop" not in seen
            async with client.messages.stream(**KWARGS) as stream:  # type: ignore[arg-type]
                final = await stream.get_final_message()
            assert final.stop_reason == "tool_use"
    statuses = [(r.status, r.turn) for r in fake.journal.records]
    assert statuses == [(0, 0), (200, 0), (200, 1), (200, 1)]
    assert fake.journal.records[2].fault == {"kind": "stream_cut", "after_events": 4}


async def test_serve_refuses_non_loopback_hosts() -> None:
    fake = FakeAnthropic(script())
    with pytest.raises(ConfigError, match="loopback only"):
        async with fake.serve(host="0.0.0.0", port=0):
            pass
