"""The runtime's own API retries: the policy alone, then the agent loop under virtual time
against the fake Messages API (real SDK, in-process transport)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness.chaos_random import ChaosRandom
from harness.runtime.config import RuntimeConfig
from harness.runtime.retry import MAX_DELAY, RetryPolicy, retry_after, retryable
from harness.scenarios.rig import reference_runtime
from harness.sim import run_sim
from harness.telemetry import semconv as sc

_REQUEST = httpx2.Request("POST", "https://api.example/v1/messages")


def _status_error(status: int, headers: dict[str, str] | None = None) -> anthropic.APIStatusError:
    response = httpx2.Response(status, headers=headers or {}, request=_REQUEST)
    return anthropic.APIStatusError("failed", response=response, body=None)


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (408, {}, True),
        (409, {}, True),
        (429, {}, True),
        (500, {}, True),
        (529, {}, True),
        (400, {}, False),
        (404, {}, False),
        (400, {"x-should-retry": "true"}, True),
        (503, {"x-should-retry": "false"}, False),
    ],
)
def test_retryable_follows_the_sdk_policy(
    status: int, headers: dict[str, str], expected: bool
) -> None:
    assert retryable(_status_error(status, headers)) is expected


def test_connection_errors_and_timeouts_are_retryable_other_errors_are_not() -> None:
    assert retryable(anthropic.APIConnectionError(request=_REQUEST))
    assert retryable(anthropic.APITimeoutError(request=_REQUEST))
    assert not retryable(ValueError("not an API error"))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "soon", "retry-after": "2"}, 2.0),
        (
            {
                "retry-after": "Wed, 21 Oct 2026 07:28:30 GMT",
                "date": "Wed, 21 Oct 2026 07:28:00 GMT",
            },
            30.0,
        ),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:30 GMT"}, None),
        ({"retry-after": "later"}, None),
    ],
)
def test_retry_after_reads_the_headers_without_a_wall_clock(
    headers: dict[str, str], expected: float | None
) -> None:
    assert retry_after(httpx2.Headers(headers)) == expected


def test_backoff_doubles_up_to_the_ceiling_with_jitter_from_the_seed() -> None:
    error = _status_error(529)
    policy = RetryPolicy(10, rng=ChaosRandom(5))
    delays = []
    for taken in range(8):
        retry = policy.next(taken, error)
        assert retry is not None
        assert (retry.attempt, retry.retry_after) == (taken + 1, None)
        base = min(0.5 * 2**taken, MAX_DELAY)
        assert 0.75 * base < retry.delay <= base
        delays.append(retry.delay)
    again = RetryPolicy(10, rng=ChaosRandom(5))
    assert [again.next(t, error).delay for t in range(8)] == delays  # type: ignore[union-attr]
    other = RetryPolicy(10, rng=ChaosRandom(6))
    assert [other.next(t, error).delay for t in range(8)] != delays  # type: ignore[union-attr]


def test_a_server_wait_is_taken_exactly_and_the_budget_and_final_errors_stop_retries() -> None:
    policy = RetryPolicy(2, rng=ChaosRandom(0))
    asked = policy.next(0, _status_error(429, {"retry-after": "4"}))
    assert asked is not None
    assert (asked.attempt, asked.delay, asked.retry_after) == (1, 4.0, 4.0)
    # A zero wait is no instruction: back off as usual.
    zero = policy.next(0, _status_error(429, {"retry-after": "0"}))
    assert zero is not None
    assert zero.retry_after is None
    assert zero.delay > 0
    assert policy.next(2, _status_error(500)) is None
    assert policy.next(0, _status_error(400)) is None
    assert RetryPolicy(0, rng=ChaosRandom(0)).next(0, _status_error(500)) is None
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(-1, rng=ChaosRandom(0))


def _config(fails: list[dict[str, Any]], max_retries: int) -> RuntimeConfig:
    script = {"agents": {"main": {"turns": [{"fail": fails, "text": "done"}]}}}
    return RuntimeConfig.model_validate(
        {"api": {"fake_script": script, "max_retries": max_retries}}
    )


def _run(config: RuntimeConfig, seed: int) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        async with reference_runtime(config, rng=ChaosRandom(seed)) as rig:
            rt = rig.rt
            result = await rig.run("go")
            assert rig.fake_api is not None
            journal = [r.request.get("retry_count") for r in rig.fake_api.journal.records]
            retries = [e.to_json() for e in rt.events.of_kind("llm_retry")]
        assert result.main is not None
        return {"main": result.main, "journal": journal, "retries": retries}

    return run_sim(main, seed=seed).value


def test_the_runner_retries_on_the_clock_and_records_each_retry(
    spans: InMemorySpanExporter,
) -> None:
    out = _run(_config([{"kind": "overloaded"}, {"kind": "api_error"}], max_retries=2), seed=4)
    assert out["main"].stop == "end_turn", out["main"].error
    assert out["journal"] == ["0", "1", "2"]
    first, second = out["retries"]
    assert (first["attempt"], first["error_type"]) == (1, "overloaded_error")
    assert (second["attempt"], second["error_type"]) == (2, "api_error")
    # Each retry starts after the previous wait on the (virtual) clock.
    assert second["time"] == pytest.approx(first["time"] + first["delay"])
    [chat] = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    assert chat.attributes is not None
    assert chat.attributes[sc.HARNESS_LLM_RETRIES] == 2
    events = [e for e in chat.events if e.name == sc.HARNESS_LLM_RETRY]
    assert [e.attributes[sc.HARNESS_LLM_RETRY_DELAY] for e in events if e.attributes] == [
        first["delay"],
        second["delay"],
    ]
    assert _run(_config([{"kind": "overloaded"}, {"kind": "api_error"}], 2), seed=4) == out


def test_an_error_past_the_budget_ends_the_agent_with_its_cause() -> None:
    out = _run(_config([{"kind": "overloaded"}] * 3, max_retries=1), seed=0)
    assert (out["main"].stop, out["main"].error_type) == ("error", "overloaded_error")
    assert out["journal"] == ["0", "1"]
    assert [r["attempt"] for r in out["retries"]] == [1]


def test_the_runner_refuses_a_client_that_retries_on_its_own() -> None:
    from harness.runtime.agent import AgentRunner

    client = anthropic.AsyncAnthropic(api_key="sk-test", max_retries=2)
    unused: Any = None
    with pytest.raises(ValueError, match="max_retries=0"):
        AgentRunner(
            client=client,
            host=unused,
            compactor=unused,
            scope=unused,
            clock=unused,
            rng=ChaosRandom(0),
            events=unused,
        )
