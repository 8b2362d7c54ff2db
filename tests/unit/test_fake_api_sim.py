"""The fake API under the sim loop: scripted latency and retry-after waits cost no wall time,
and the same seed gives the same journal whatever the scheduling strategy's choices."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from fake_servers.anthropic import Agent, FakeAnthropic, ModelScript, RateLimit, Turn
from harness.chaos_random import ChaosRandom
from harness.sim import run_sim

SCRIPT = ModelScript(
    agents={
        "parent": Agent(turns=[Turn(text="parent done", latency=150.0)]),
        "sub1": Agent(
            turns=[Turn(text="sub1 done", latency=20.0, fail=[RateLimit(retry_after=30)])]
        ),
        "sub2": Agent(turns=[Turn(text="sub2 done", latency=140.0)]),
    }
)


async def scenario(seed: int) -> list[dict[str, Any]]:
    fake = FakeAnthropic(SCRIPT, rng=ChaosRandom(seed))
    answers: dict[str, str] = {}
    async with fake.async_client(max_retries=2) as client:

        async def ask(name: str) -> None:
            reply = await client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=50,
                system=f"[agent:{name}]",
                messages=[{"role": "user", "content": "work"}],
            )
            answers[name] = reply.content[0].text  # type: ignore[union-attr]

        async with anyio.create_task_group() as group:
            for name in ("parent", "sub1", "sub2"):
                group.start_soon(ask, name)
    assert answers == {name: f"{name} done" for name in ("parent", "sub1", "sub2")}
    return [record.to_json() for record in fake.journal.records]


@pytest.mark.parametrize("strategy", ["fifo", "random"])
def test_latency_and_retry_after_run_in_virtual_time(strategy: str) -> None:
    first = run_sim(lambda: scenario(4), seed=9, strategy=strategy, virtual_time_limit=1000)
    again = run_sim(lambda: scenario(4), seed=9, strategy=strategy, virtual_time_limit=1000)
    assert first.value == again.value
    # The 429 made sub1 wait 30 s, then 20 s of latency: done at 50 s; the parent at 150 s.
    assert first.stats.virtual_elapsed == pytest.approx(150.0, abs=0.5)
    by_agent = {(r["agent"], r["status"]): r for r in first.value}
    assert by_agent[("sub1", 429)]["time"] == pytest.approx(0.0, abs=0.5)
    assert by_agent[("sub1", 200)]["time"] == pytest.approx(30.0, abs=0.5)
    assert by_agent[("sub1", 200)]["request"]["retry_count"] == "1"
