"""The scripted model: routing, conditional turns, echoes, failures, cuts, exhaustion, ids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import anyio
import pytest

from fake_servers.anthropic import (
    Agent,
    ApiFailure,
    Condition,
    ConnectionDrop,
    FakeAnthropic,
    Latency,
    ModelScript,
    Overloaded,
    RateLimit,
    StreamCut,
    StreamError,
    ToolCall,
    Turn,
)
from harness.chaos_random import ChaosRandom
from harness.errors import FaultError

MODEL = "claude-sonnet-4-6"


class GateClock:
    """A clock whose sleeps finish only when the test opens their gate (keyed by seconds)."""

    def __init__(self) -> None:
        self.gates: dict[float, anyio.Event] = {}
        self.waiting: dict[float, anyio.Event] = {}
        self.slept: list[float] = []

    def now(self) -> float:
        return float(len(self.slept))

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.waiting.setdefault(seconds, anyio.Event()).set()
        await self.gates.setdefault(seconds, anyio.Event()).wait()

    async def started(self, seconds: float) -> None:
        await self.waiting.setdefault(seconds, anyio.Event()).wait()

    def open(self, seconds: float) -> None:
        self.gates.setdefault(seconds, anyio.Event()).set()


class InstantClock:
    """A clock whose sleeps cost nothing (scripted latency is recorded, not waited)."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def now(self) -> float:
        return sum(self.slept)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await anyio.lowlevel.checkpoint()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK's backoff for connection errors has no header to shorten it.
    monkeypatch.setattr(anthropic._base_client, "INITIAL_RETRY_DELAY", 0.001)


def create_kwargs(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 100, "messages": messages, **extra}


def first_text(message: anthropic.types.Message) -> str:
    block = message.content[0]
    assert isinstance(block, anthropic.types.TextBlock)
    return block.text


@pytest.fixture
async def tools_fake() -> AsyncIterator[tuple[FakeAnthropic, anthropic.AsyncAnthropic]]:
    script = ModelScript(
        agents={
            "worker": Agent(
                turns=[
                    Turn(
                        text="Calling both.",
                        tool_use=[
                            ToolCall(name="mem_ssh", input={"host": "a"}),
                            ToolCall(name="vault_get", input={"key": "k"}),
                        ],
                    ),
                    Turn(
                        when=Condition(tool_result_error=True),
                        text="A tool failed: {tool_results}",
                    ),
                    Turn(
                        when=Condition(tool_result_for="mem_ssh"),
                        text="Results from {tool_names}: {tool_results} ({message_count})",
                    ),
                    Turn(when=Condition(has_compaction_summary=True), text="Resumed from summary."),
                    Turn(when=Condition(matches=r"deploy #\d+"), text="Deploy noted."),
                    Turn(when=Condition(contains="bye"), text="Bye, {last_user_text}!"),
                ]
            )
        }
    )
    fake = FakeAnthropic(script, rng=ChaosRandom(3))
    async with fake.async_client(max_retries=0) as client:
        yield fake, client


async def test_parallel_tool_calls_then_echo_of_results(
    tools_fake: tuple[FakeAnthropic, anthropic.AsyncAnthropic],
) -> None:
    fake, client = tools_fake
    first = await client.messages.create(**create_kwargs([{"role": "user", "content": "go"}]))
    assert first.stop_reason == "tool_use"
    uses = [b for b in first.content if isinstance(b, anthropic.types.ToolUseBlock)]
    assert [u.name for u in uses] == ["mem_ssh", "vault_get"]
    assert all(u.id.startswith("toolu_") for u in uses)
    history = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": uses[0].id, "content": "load 0.3"},
                {
                    "type": "tool_result",
                    "tool_use_id": uses[1].id,
                    "content": [{"type": "text", "text": "s3cret"}],
                },
            ],
        },
    ]
    second = await client.messages.create(**create_kwargs(history))
    # The tool_result_error turn (index 1) does not hold, so turn 2 answers and 1 is skipped.
    assert first_text(second) == "Results from mem_ssh, vault_get: load 0.3\ns3cret (3)"
    assert [(r.agent, r.turn) for r in fake.journal.records] == [("worker", 0), ("worker", 2)]


async def test_conditional_turns_on_error_summary_regex_and_text(
    tools_fake: tuple[FakeAnthropic, anthropic.AsyncAnthropic],
) -> None:
    fake, client = tools_fake
    first = await client.messages.create(**create_kwargs([{"role": "user", "content": "go"}]))
    uses = [b for b in first.content if isinstance(b, anthropic.types.ToolUseBlock)]
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": uses[0].id, "content": "ok"},
                {
                    "type": "tool_result",
                    "tool_use_id": uses[1].id,
                    "content": "denied",
                    "is_error": True,
                },
            ],
        },
    ]
    failed = await client.messages.create(**create_kwargs(history))
    assert first_text(failed) == "A tool failed: ok\ndenied"
    # No summary yet: the compaction turn is not eligible, and a non-matching request that
    # skips to the regex turn would consume it; send the summary first.
    summary = [
        {"role": "user", "content": "<compaction-summary>we ran two tools</compaction-summary>"}
    ]
    resumed = await client.messages.create(**create_kwargs(summary))
    assert first_text(resumed) == "Resumed from summary."
    noted = await client.messages.create(
        **create_kwargs([{"role": "user", "content": "log deploy #42 please"}])
    )
    assert first_text(noted) == "Deploy noted."
    bye = await client.messages.create(**create_kwargs([{"role": "user", "content": "bye now"}]))
    assert first_text(bye) == "Bye, bye now!"
    assert [r.turn for r in fake.journal.records] == [0, 1, 3, 4, 5]


async def test_no_matching_turn_left_is_a_clear_400(
    tools_fake: tuple[FakeAnthropic, anthropic.AsyncAnthropic],
) -> None:
    fake, client = tools_fake
    await client.messages.create(**create_kwargs([{"role": "user", "content": "go"}]))
    # Only conditional turns remain and none holds for this conversation.
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(**create_kwargs([{"role": "user", "content": "plain"}]))
    assert caught.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "fake-anthropic: agent 'worker' has no scripted turn left at turn 1 "
            "(6 turns scripted, none at or after 1 matches)",
        },
        "request_id": caught.value.request_id,
    }
    last = fake.journal.records[-1]
    assert (last.agent, last.turn, last.status, last.verdict) == ("worker", None, 400, "ok")


async def test_exhausted_agent_answers_400_naming_agent_and_turn() -> None:
    script = ModelScript(agents={"one": Agent(turns=[Turn(text="only")])})
    async with FakeAnthropic(script).async_client(max_retries=0) as client:
        await client.messages.create(**create_kwargs([{"role": "user", "content": "a"}]))
        with pytest.raises(
            anthropic.BadRequestError, match="agent 'one' has no scripted turn left at turn 1"
        ):
            await client.messages.create(**create_kwargs([{"role": "user", "content": "b"}]))


def routing_script() -> ModelScript:
    def agent(name: str, latency: float) -> Agent:
        return Agent(
            turns=[
                Turn(text=f"{name} first", latency=latency),
                Turn(text=f"{name} second"),
            ]
        )

    return ModelScript(
        agents={
            "parent": agent("parent", 1.0),
            "sub1": agent("sub1", 2.0),
            "sub2": agent("sub2", 3.0),
        }
    )


async def test_concurrent_agents_follow_their_own_turns() -> None:
    clock = GateClock()
    fake = FakeAnthropic(routing_script(), clock=clock)
    routes: dict[str, dict[str, Any]] = {
        "parent": {"system": "You lead. [agent:parent]"},
        "sub1": {
            "system": [{"type": "text", "text": "helper"}, {"type": "text", "text": "[agent:sub1]"}]
        },
        "sub2": {"metadata": {"user_id": "agent:sub2"}},
    }
    answers: dict[str, list[str]] = {name: [] for name in routes}
    async with fake.async_client(max_retries=0) as client:

        async def run(name: str) -> None:
            for _ in range(2):
                reply = await client.messages.create(
                    **create_kwargs([{"role": "user", "content": "work"}], **routes[name])
                )
                answers[name].append(first_text(reply))

        async with anyio.create_task_group() as group:
            for name in routes:
                group.start_soon(run, name)
            for seconds in (1.0, 2.0, 3.0):
                await clock.started(seconds)
            # Finish the first turns in the reverse order of arrival.
            for seconds in (3.0, 2.0, 1.0):
                clock.open(seconds)
    assert answers == {name: [f"{name} first", f"{name} second"] for name in routes}
    turns = {(r.agent, r.turn) for r in fake.journal.records}
    assert turns == {(name, t) for name in routes for t in (0, 1)}
    assert [r.seq for r in fake.journal.records] == list(range(1, 7))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"system": "[agent:ghost]"},
            "fake-anthropic: the system prompt names agent 'ghost', which the script does not "
            "define; available agents: parent, sub1, sub2",
        ),
        (
            {"metadata": {"user_id": "someone"}},
            "fake-anthropic: no agent matches this request (put [agent:NAME] in the system "
            "prompt or set metadata.user_id to NAME); available agents: parent, sub1, sub2",
        ),
    ],
)
async def test_unroutable_requests_name_the_agents(extra: dict[str, Any], message: str) -> None:
    fake = FakeAnthropic(routing_script())
    async with fake.async_client(max_retries=0) as client:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(
                **create_kwargs([{"role": "user", "content": "x"}], **extra)
            )
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["message"] == message
    assert fake.journal.records[0].agent is None


async def test_scripted_failures_are_retried_and_the_retry_gets_the_turn() -> None:
    script = ModelScript(
        agents={
            "a": Agent(
                turns=[
                    Turn(
                        text="finally",
                        fail=[
                            RateLimit(retry_after=0.01),
                            ApiFailure(retry_after=0.01),
                            Overloaded(retry_after=0.01),
                        ],
                    ),
                    Turn(text="next"),
                ]
            )
        }
    )
    fake = FakeAnthropic(script)
    async with fake.async_client(max_retries=3) as client:
        reply = await client.messages.create(**create_kwargs([{"role": "user", "content": "x"}]))
        assert first_text(reply) == "finally"
        again = await client.messages.create(**create_kwargs([{"role": "user", "content": "y"}]))
        assert first_text(again) == "next"
    records = fake.journal.records
    assert [r.request["retry_count"] for r in records] == ["0", "1", "2", "3", "0"]
    assert [r.status for r in records] == [429, 500, 529, 200, 200]
    assert [r.turn for r in records] == [0, 0, 0, 0, 1]
    assert [r.fault["kind"] if r.fault else None for r in records] == [
        "rate_limit",
        "api_error",
        "overloaded",
        None,
        None,
    ]
    assert [r.error["type"] if r.error else None for r in records[:3]] == [
        "rate_limit_error",
        "api_error",
        "overloaded_error",
    ]


async def test_failure_without_retries_reaches_the_caller_with_retry_after() -> None:
    script = ModelScript(
        agents={"a": Agent(turns=[Turn(text="t", fail=[RateLimit(retry_after=7)])])}
    )
    async with FakeAnthropic(script).async_client(max_retries=0) as client:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await client.messages.create(**create_kwargs([{"role": "user", "content": "x"}]))
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "rate_limit_error"


async def test_injected_connection_drops_are_retried_by_the_sdk(fast_retries: None) -> None:
    clock = InstantClock()
    fake = FakeAnthropic(routing_script(), clock=clock)
    fake.inject(ConnectionDrop(), agent="sub1", count=2)
    parent = {"system": "[agent:parent]"}
    sub1 = {"system": "[agent:sub1]"}
    async with fake.async_client(max_retries=2) as client:
        # The parent is not affected by a fault aimed at sub1.
        reply = await client.messages.create(
            **create_kwargs([{"role": "user", "content": "x"}], **parent)
        )
        assert first_text(reply) == "parent first"
        reply = await client.messages.create(
            **create_kwargs([{"role": "user", "content": "x"}], **sub1)
        )
        assert first_text(reply) == "sub1 first"
    sub_records = [r for r in fake.journal.records if r.agent == "sub1"]
    assert [r.request["retry_count"] for r in sub_records] == ["0", "1", "2"]
    assert [r.status for r in sub_records] == [0, 0, 200]
    assert clock.slept == [1.0, 2.0]


async def test_connection_drop_without_retries_is_a_connection_error() -> None:
    fake = FakeAnthropic(routing_script(), clock=InstantClock())
    fake.inject(ConnectionDrop())
    async with fake.async_client(max_retries=0) as client:
        with pytest.raises(anthropic.APIConnectionError):
            await client.messages.create(
                **create_kwargs([{"role": "user", "content": "x"}], system="[agent:parent]")
            )
        reply = await client.messages.create(
            **create_kwargs([{"role": "user", "content": "x"}], system="[agent:parent]")
        )
    assert first_text(reply) == "parent first"


async def test_stream_cut_in_process_fails_then_the_turn_streams_whole() -> None:
    script = ModelScript(
        agents={
            "a": Agent(
                turns=[
                    Turn(
                        text="a long enough answer to need several deltas",
                        tool_use=[ToolCall(name="t", input={"path": "/var/log/syslog"})],
                        fail=[StreamCut(after_events=3)],
                    )
                ]
            )
        }
    )
    fake = FakeAnthropic(script)
    async with fake.async_client(max_retries=0) as client:
        with pytest.raises(anthropic.APIConnectionError):
            async with client.messages.stream(
                **create_kwargs([{"role": "user", "content": "x"}])
            ) as stream:
                await stream.get_final_message()
        async with client.messages.stream(
            **create_kwargs([{"role": "user", "content": "x"}])
        ) as stream:
            kinds = [event.type async for event in stream]
            final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert first_text(final) == "a long enough answer to need several deltas"
    tool = final.content[1]
    assert isinstance(tool, anthropic.types.ToolUseBlock)
    assert tool.input == {"path": "/var/log/syslog"}
    assert "input_json" in kinds
    assert kinds[-1] == "message_stop"
    assert fake.journal.records[0].fault == {"kind": "stream_cut", "after_events": 3}
    assert [r.turn for r in fake.journal.records] == [0, 0]


async def test_latency_uses_the_injected_clock() -> None:
    clock = GateClock()
    script = ModelScript(agents={"a": Agent(turns=[Turn(text="slow", latency=150.0)])})
    fake = FakeAnthropic(script, clock=clock)
    fake.inject(Latency(seconds=2.5))
    clock.open(2.5)
    clock.open(150.0)
    async with fake.async_client(max_retries=0) as client:
        reply = await client.messages.create(**create_kwargs([{"role": "user", "content": "x"}]))
    assert first_text(reply) == "slow"
    assert clock.slept == [2.5, 150.0]


def test_inject_rejects_unknown_agents_and_bad_counts() -> None:
    fake = FakeAnthropic(routing_script())
    with pytest.raises(FaultError, match=r"unknown agent 'nobody' \(agents: parent, sub1, sub2\)"):
        fake.inject(ConnectionDrop(), agent="nobody")
    with pytest.raises(FaultError, match=r"needs count >= 1 \(got 0\)"):
        fake.inject(ConnectionDrop(), count=0)


async def ids_for(seed: int) -> list[str]:
    script = ModelScript(
        agents={"a": Agent(turns=[Turn(text="x", tool_use=[ToolCall(name="t")])], repeat=True)}
    )
    fake = FakeAnthropic(script, rng=ChaosRandom(seed))
    async with fake.async_client(max_retries=0) as client:
        out = []
        for _ in range(2):
            reply = await client.messages.create(
                **create_kwargs([{"role": "user", "content": "x"}])
            )
            out += [reply.id, reply.content[1].id]  # type: ignore[union-attr]
            out.append(reply._request_id or "")
    return out


async def test_same_seed_same_ids_other_seed_other_ids() -> None:
    first, again, other = await ids_for(11), await ids_for(11), await ids_for(12)
    assert first == again
    assert first != other
    assert first[0].startswith("msg_")
    assert first[1].startswith("toolu_")
    assert first[2].startswith("req_")


async def test_count_tokens_matches_usage_and_models_lists_script_models() -> None:
    script = ModelScript(
        agents={"a": Agent(turns=[Turn(text="x")])}, models=[MODEL, "claude-haiku-4-5"]
    )
    messages = [{"role": "user", "content": "how many tokens is this sentence?"}]
    system = "You count."
    async with FakeAnthropic(script).async_client(max_retries=0) as client:
        counted = await client.messages.count_tokens(model=MODEL, messages=messages, system=system)  # type: ignore[arg-type]
        reply = await client.messages.create(**create_kwargs(messages, system=system))
        models = [m.id async for m in client.models.list()]
    # system (10 chars) + 8 per message + the text (33 chars) = 51 chars -> ceil(51 / 4)
    expected = 13
    assert counted.input_tokens == reply.usage.input_tokens == expected
    assert models == [MODEL, "claude-haiku-4-5"]


async def test_stream_error_event_mid_stream_then_the_retry_gets_the_turn() -> None:
    script = ModelScript(
        agents={
            "a": Agent(
                turns=[Turn(text="streamed after an overload", fail=[StreamError(after_events=2)])]
            )
        }
    )
    fake = FakeAnthropic(script)
    seen: list[str] = []

    async def consume(client: anthropic.AsyncAnthropic) -> None:
        async with client.messages.stream(
            **create_kwargs([{"role": "user", "content": "x"}])
        ) as stream:
            async for event in stream:
                seen.append(event.type)

    async with fake.async_client(max_retries=0) as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await consume(client)
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}
        assert seen[0] == "message_start"
        assert "message_stop" not in seen
        async with client.messages.stream(
            **create_kwargs([{"role": "user", "content": "x"}])
        ) as stream:
            final = await stream.get_final_message()
    assert first_text(final) == "streamed after an overload"
    assert [(r.turn, r.fault is not None) for r in fake.journal.records] == [(0, True), (0, False)]


async def test_stream_error_on_a_json_request_is_the_matching_status() -> None:
    fault = StreamError(after_events=1, error_type="api_error")
    script = ModelScript(agents={"a": Agent(turns=[Turn(text="t", fail=[fault])])})
    async with FakeAnthropic(script).async_client(max_retries=0) as client:
        with pytest.raises(anthropic.InternalServerError) as caught:
            await client.messages.create(**create_kwargs([{"role": "user", "content": "x"}]))
    assert caught.value.status_code == 500


async def test_concurrent_requests_of_one_agent_take_successive_turns_despite_latency() -> None:
    clock = GateClock()
    script = ModelScript(
        agents={"a": Agent(turns=[Turn(text="slow first", latency=5.0), Turn(text="quick second")])}
    )
    fake = FakeAnthropic(script, clock=clock)
    answers: list[str] = []
    async with fake.async_client(max_retries=0) as client:

        async def ask() -> None:
            reply = await client.messages.create(
                **create_kwargs([{"role": "user", "content": "x"}])
            )
            answers.append(first_text(reply))

        async with anyio.create_task_group() as group:
            group.start_soon(ask)
            await clock.started(5.0)
            # The first request is waiting out its latency; the second must not get its turn.
            await ask()
            clock.open(5.0)
    assert answers == ["quick second", "slow first"]


async def test_stream_cut_beyond_the_last_event_still_leaves_the_stream_unfinished() -> None:
    script = ModelScript(
        agents={"a": Agent(turns=[Turn(text="t", fail=[StreamCut(after_events=999)])])}
    )
    fake = FakeAnthropic(script)
    async with fake.async_client(max_retries=0) as client:
        with pytest.raises(anthropic.APIConnectionError):
            await client.messages.create(
                **create_kwargs([{"role": "user", "content": "x"}]), stream=True
            )
        # The cut consumed itself, not the turn.
        reply = await client.messages.create(**create_kwargs([{"role": "user", "content": "x"}]))
    assert first_text(reply) == "t"


async def journal_of_a_run(seed: int) -> list[dict[str, Any]]:
    fake = FakeAnthropic(routing_script(), rng=ChaosRandom(seed), clock=InstantClock())
    fake.inject(RateLimit(retry_after=0.001), agent="sub2")
    async with fake.async_client(max_retries=1) as client:
        for name in ("parent", "sub1", "sub2", "parent"):
            await client.messages.create(
                **create_kwargs([{"role": "user", "content": "x"}], system=f"[agent:{name}]")
            )
    return [record.to_json() for record in fake.journal.records]


async def test_same_seed_same_journal() -> None:
    first, again = await journal_of_a_run(21), await journal_of_a_run(21)
    assert first == again
    assert [(r["agent"], r["turn"], r["status"]) for r in first] == [
        ("parent", 0, 200),
        ("sub1", 0, 200),
        ("sub2", 0, 429),
        ("sub2", 0, 200),
        ("parent", 1, 200),
    ]


async def test_tokens_count_tools_tool_inputs_and_results() -> None:
    tools = [{"name": "mem_ssh", "description": "run", "input_schema": {"type": "object"}}]
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "mem_ssh", "input": {"h": "a"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "up"}],
                }
            ],
        },
    ]
    script = ModelScript(agents={"a": Agent(turns=[Turn(text="x")])})
    async with FakeAnthropic(script).async_client(max_retries=0) as client:
        counted = await client.messages.count_tokens(model=MODEL, messages=messages, tools=tools)  # type: ignore[arg-type]
        reply = await client.messages.create(**create_kwargs(messages, tools=tools))
    tools_json = '[{"name":"mem_ssh","description":"run","input_schema":{"type":"object"}}]'
    # 3 messages x 8 + "go" + "mem_ssh" + '{"h":"a"}' + "up" + the tools JSON
    chars = 24 + 2 + 7 + 9 + 2 + len(tools_json)
    assert counted.input_tokens == reply.usage.input_tokens == -(-chars // 4)


# -- the round: every tool_result since the last assistant turn ------------------------------

_ROUND_CALLS = [
    ToolCall(name="mem_ssh", input={"host": "a"}, id="toolu_a"),
    ToolCall(name="mem_ssh", input={"host": "b"}, id="toolu_b"),
    ToolCall(name="vault_get", input={"key": "k"}, id="toolu_v"),
]


def round_fake(*turns: Turn) -> FakeAnthropic:
    calls = Turn(text="Calling three.", tool_use=list(_ROUND_CALLS))
    return FakeAnthropic(
        ModelScript(agents={"w": Agent(turns=[calls, *turns])}), rng=ChaosRandom(1)
    )


def result(use_id: str, text: str, *, error: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": use_id, "content": text}
    return block | ({"is_error": True} if error else {})


async def answer_round(fake: FakeAnthropic, *user_messages: list[dict[str, Any]]) -> str:
    async with fake.async_client(max_retries=0) as client:
        first = await client.messages.create(**create_kwargs([{"role": "user", "content": "go"}]))
        history: list[dict[str, Any]] = [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            *({"role": "user", "content": blocks} for blocks in user_messages),
        ]
        return first_text(await client.messages.create(**create_kwargs(history)))


async def test_an_error_of_any_parallel_result_is_seen_when_results_come_split() -> None:
    # Each result in its own user message, the failed one first: the old rule (the last
    # tool_result of the last message) saw only vault_get's success.
    fake = round_fake(
        Turn(when=Condition(tool_result_error=False), text="all fine"),
        Turn(
            when=Condition(tool_result_error=True, tool_error_for="mem_ssh", tool_result_count=3),
            text="errors: {tool_errors} | b: {tool_result[1]} | v: {tool_result[toolu_v]} | "
            "ssh: {tool_results.mem_ssh} | {tool_names} ({tool_result_count})",
        ),
    )
    text = await answer_round(
        fake,
        [result("toolu_a", "host a unreachable", error=True)],
        [result("toolu_b", "up 3 days")],
        [result("toolu_v", "s3cret")],
    )
    assert text == (
        "errors: host a unreachable | b: up 3 days | v: s3cret | "
        "ssh: host a unreachable\nup 3 days | mem_ssh, mem_ssh, vault_get (3)"
    )
    assert [r.turn for r in fake.journal.records] == [0, 2]


async def test_round_conditions_by_tool_text_and_count() -> None:
    fake = round_fake(
        Turn(when=Condition(tool_error_for="vault_get"), text="vault failed"),
        Turn(when=Condition(tool_result_count=2), text="two"),
        Turn(
            when=Condition(tool_result_for="vault_get", tool_result_contains="up"),
            text="{tool_results} / missing: {tool_result[3]} {tool_results.nope} {tool_result[x]}",
        ),
    )
    # The results in two messages, text after them: the count and error turns do not hold.
    text = await answer_round(
        fake,
        [result("toolu_a", "up")],
        [result("toolu_v", "k=1"), result("toolu_b", "down"), {"type": "text", "text": "and"}],
    )
    assert text == "up\nk=1\ndown / missing: (no result) (no result) (no result)"
    assert [r.turn for r in fake.journal.records] == [0, 3]


async def test_results_of_an_earlier_round_are_not_this_rounds() -> None:
    fake = round_fake(
        Turn(text="next", tool_use=[ToolCall(name="mem_ssh", input={}, id="toolu_c")]),
        Turn(when=Condition(tool_result_error=False), text="now: {tool_results}"),
    )
    async with fake.async_client(max_retries=0) as client:
        first = await client.messages.create(**create_kwargs([{"role": "user", "content": "go"}]))
        history: list[dict[str, Any]] = [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {
                "role": "user",
                "content": [
                    result("toolu_a", "old", error=True),
                    result("toolu_b", "old"),
                    result("toolu_v", "old"),
                ],
            },
        ]
        second = await client.messages.create(**create_kwargs(history))
        history += [
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in second.content],
            },
            {"role": "user", "content": [result("toolu_c", "fresh")]},
        ]
        third = await client.messages.create(**create_kwargs(history))
    assert first_text(third) == "now: fresh"
