"""The fault plan on an in-process MCP transport, under the sim loop: faults land at exact
virtual times, the client sees what it would see over stdio, and the same seed gives the same
fault records."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client, MCPError
from mcp.client._memory import InMemoryTransport
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fake_servers.anthropic import FakeAnthropic, ModelScript
from fake_servers.mcp import ServerScript, ToolScript, build_server
from harness.chaos_random import ChaosRandom
from harness.clock import LoopClock
from harness.faults.inprocess import transport_wrapper
from harness.faults.llm import inject_llm_faults
from harness.faults.plan import FaultPlan
from harness.faults.records import FaultRecorder
from harness.sim import run_sim
from harness.telemetry import semconv

ARGS = {"host": "db1", "command": "uptime"}


async def _session(
    plan: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    *,
    seed: int = 1,
    script: ServerScript | None = None,
) -> tuple[list[Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Run ``calls`` one after another through a faulty transport; returns per call
    (outcome, start, end), the fault records and the server's event log."""
    clock = LoopClock()
    fake = build_server("ssh", script=script or ServerScript(), clock=clock, rng=ChaosRandom(seed))
    recorder = FaultRecorder(clock=clock)
    wrap = transport_wrapper(
        FaultPlan.model_validate(plan).for_target("ssh"),
        "ssh",
        clock=clock,
        rng=ChaosRandom(seed),
        recorder=recorder,
    )
    outcomes: list[Any] = []
    async with Client(wrap(InMemoryTransport(fake.server)), mode="legacy") as client:
        await client.list_tools()
        for call in calls:
            start = clock.now()
            try:
                result = await client.call_tool("mem_ssh", ARGS, **call)
                outcome: Any = "ok" if not result.is_error else "tool_error"
            except MCPError as exc:
                outcome = exc.error.code
            outcomes.append((outcome, round(start, 6), round(clock.now(), 6)))
    return (
        outcomes,
        [r.to_json() for r in recorder.records],
        [e.to_json() for e in fake.events.events],
    )


def test_delay_drop_and_kill_land_at_exact_virtual_times() -> None:
    plan = [
        {
            "type": "delay",
            "seconds": 30,
            "match": {"method": "tools/call", "direction": "downstream", "nth": 1},
        },
        {"type": "drop", "match": {"method": "tools/call", "direction": "upstream", "nth": 2}},
        {"type": "kill", "signal": "SIGKILL", "match": {"method": "tools/call", "nth": 4}},
    ]
    calls = [{}, {"read_timeout_seconds": 150}, {}, {}, {}]
    result = run_sim(lambda: _session(plan, calls), seed=0)
    outcomes, records, events = result.value
    assert [o[0] for o in outcomes] == ["ok", -32001, "ok", -32000, -32000]
    first, dropped = outcomes[0], outcomes[1]
    assert first[2] - first[1] == pytest.approx(30.0)
    assert dropped[2] - dropped[1] == pytest.approx(150.0)
    # The dropped request never reached the server: it saw three calls, the 4th in flight.
    assert [e["kind"] for e in events if e.get("tool") == "mem_ssh"].count("request") == 3
    assert [(r["type"], r["kind"]) for r in records] == [
        ("delay", "applied"),
        ("drop", "applied"),
        ("kill", "applied"),
    ]
    assert records[0]["trigger"] == "method=tools/call,direction=downstream,nth=1"
    assert records[1]["request_id"] != records[2]["request_id"]
    assert all(0 <= r["draw"] < 1 for r in records)
    assert run_sim(lambda: _session(plan, calls), seed=0).value == result.value
    shuffled = run_sim(lambda: _session(plan, calls), seed=9, strategy="random")
    assert shuffled.value == run_sim(lambda: _session(plan, calls), seed=9, strategy="random").value
    assert [o[0] for o in shuffled.value[0]] == ["ok", -32001, "ok", -32000, -32000]


def test_kill_while_the_request_is_in_flight_fails_it_with_connection_closed() -> None:
    script = ServerScript(tools={"mem_ssh": ToolScript(default={"latency": 100.0})})  # type: ignore[arg-type]
    plan = [{"type": "kill", "match": {"method": "tools/call"}}]
    outcomes, records, events = run_sim(lambda: _session(plan, [{}], script=script), seed=0).value
    assert outcomes[0][0] == -32000
    # It failed at once, not after the tool's 100 s.
    assert outcomes[0][2] - outcomes[0][1] < 1.0
    assert records[0]["signal"] == "SIGKILL"
    assert any(e["kind"] == "cancelled" for e in events)


def test_kill_after_a_delay_hits_the_call_mid_way() -> None:
    script = ServerScript(tools={"mem_ssh": ToolScript(default={"latency": 100.0})})  # type: ignore[arg-type]
    plan = [{"type": "kill", "after": 5, "match": {"method": "tools/call"}}]
    outcomes, records, _ = run_sim(lambda: _session(plan, [{}], script=script), seed=0).value
    assert outcomes[0][0] == -32000
    assert outcomes[0][2] - outcomes[0][1] == pytest.approx(5.0, abs=0.01)
    assert records[0]["after"] == 5.0


def test_late_response_arrives_after_the_cancel_and_the_session_survives() -> None:
    plan = [{"type": "late_response", "delay": 5, "match": {"method": "tools/call", "nth": 1}}]
    calls = [{"read_timeout_seconds": 10}, {}]
    outcomes, records, events = run_sim(lambda: _session(plan, calls), seed=0).value
    assert [o[0] for o in outcomes] == [-32001, "ok"]
    assert outcomes[0][2] - outcomes[0][1] == pytest.approx(10.0)
    assert [r["kind"] for r in records] == ["applied", "released"]
    released = records[1]
    assert released["trigger"] == "cancelled"
    assert released["time"] == pytest.approx(records[0]["time"] + 10.0, abs=0.01)
    # The server never heard of the cancel: it finished the call and answered.
    assert not any(e["kind"] == "cancelled" for e in events)
    assert [e["kind"] for e in events if e.get("tool") == "mem_ssh"].count("finished") == 2


def test_duplicate_unknown_id_and_garbage_leave_the_session_usable() -> None:
    plan = [
        {
            "type": "duplicate",
            "copies": 2,
            "match": {"method": "tools/call", "direction": "downstream"},
        },
        {
            "type": "unknown_id",
            "match": {"method": "tools/call", "direction": "upstream"},
            "count": "all",
        },
        {"type": "garbage", "match": {"method": "tools/call", "direction": "downstream", "nth": 2}},
    ]
    calls = [{}, {}, {}]
    outcomes, records, _ = run_sim(lambda: _session(plan, calls), seed=0).value
    assert [o[0] for o in outcomes] == ["ok", "ok", "ok"]
    kinds = [r["type"] for r in records]
    assert kinds.count("duplicate") == 1
    assert kinds.count("unknown_id") == 3
    assert kinds.count("garbage") == 1


def test_corrupt_response_is_lost_and_the_call_times_out() -> None:
    plan = [{"type": "corrupt", "match": {"method": "tools/call", "direction": "downstream"}}]
    outcomes, records, _ = run_sim(
        lambda: _session(plan, [{"read_timeout_seconds": 20}, {}]), seed=0
    ).value
    assert [o[0] for o in outcomes] == [-32001, "ok"]
    assert 0.1 <= records[0]["keep_fraction"] <= 0.9


def test_freeze_holds_every_frame_for_its_duration() -> None:
    plan = [{"type": "freeze", "seconds": 42, "match": {"method": "tools/call", "nth": 1}}]
    outcomes, _, events = run_sim(lambda: _session(plan, [{}, {}]), seed=0).value
    assert [o[0] for o in outcomes] == ["ok", "ok"]
    assert outcomes[0][2] - outcomes[0][1] == pytest.approx(42.0)
    # Frozen before the request moved on: the server got it only when the freeze ended.
    first = next(e for e in events if e.get("tool") == "mem_ssh" and e["kind"] == "request")
    assert first["time"] == pytest.approx(outcomes[0][1] + 42.0, abs=0.01)
    assert outcomes[1][2] - outcomes[1][1] < 1.0


def test_timed_kill_closes_the_connection_at_its_scenario_time() -> None:
    script = ServerScript(tools={"mem_ssh": ToolScript(default={"latency": 100.0})})  # type: ignore[arg-type]
    plan = [{"type": "kill", "signal": "close_stdin", "at": 12.5}]
    outcomes, records, _ = run_sim(lambda: _session(plan, [{}], script=script), seed=0).value
    assert outcomes[0][0] == -32000
    assert outcomes[0][2] == pytest.approx(12.5, abs=0.01)
    assert records[0]["trigger"] == "at=12.5"


def test_latency_toxic_runs_on_the_frames_in_virtual_time() -> None:
    plan = [
        {
            "type": "toxic",
            "toxic": {"type": "latency", "stream": "downstream", "attributes": {"latency": 2000}},
        },
        {
            "type": "toxic",
            "toxic": {"type": "latency", "stream": "upstream", "attributes": {"latency": 1000}},
        },
    ]
    outcomes, records, _ = run_sim(lambda: _session(plan, [{}]), seed=0).value
    assert outcomes[0][0] == "ok"
    assert outcomes[0][2] - outcomes[0][1] == pytest.approx(3.0, abs=0.01)
    assert {(r["type"], r["stream"]) for r in records} == {
        ("latency", "downstream"),
        ("latency", "upstream"),
    }


def test_closing_toxic_closes_the_connection() -> None:
    plan = [{"type": "toxic", "toxic": {"type": "reset_peer", "attributes": {"timeout": 5000}}}]
    script = ServerScript(tools={"mem_ssh": ToolScript(default={"latency": 100.0})})  # type: ignore[arg-type]
    outcomes, records, _ = run_sim(lambda: _session(plan, [{}], script=script), seed=0).value
    assert outcomes[0][0] == -32000
    assert outcomes[0][2] == pytest.approx(5.0, abs=0.01)
    assert [r["kind"] for r in records] == ["applied", "reset"]


def test_probability_draws_are_seeded_and_recorded() -> None:
    plan = [
        {
            "type": "delay",
            "seconds": 1,
            "probability": 0.5,
            "count": "all",
            "match": {"method": "tools/call", "direction": "downstream"},
        }
    ]
    calls = [{}] * 12

    def hit_pattern(seed: int) -> list[float]:
        outcomes, records, _ = run_sim(lambda: _session(plan, calls, seed=seed), seed=0).value
        assert all(r["draw"] < 0.5 for r in records)
        return [round(o[2] - o[1]) for o in outcomes]

    first = hit_pattern(5)
    assert 0 < sum(first) < 12
    assert hit_pattern(5) == first
    assert any(hit_pattern(seed) != first for seed in (6, 7, 8))


def test_faults_for_other_targets_do_not_apply() -> None:
    plan = [{"type": "drop", "target": "vault", "match": {"method": "tools/call"}}]
    outcomes, records, _ = run_sim(lambda: _session(plan, [{}]), seed=0).value
    assert outcomes[0][0] == "ok"
    assert records == []


def test_fault_records_become_harness_fault_spans(spans: InMemorySpanExporter) -> None:
    plan = [
        {
            "type": "delay",
            "seconds": 3,
            "match": {"method": "tools/call", "direction": "downstream"},
        }
    ]
    run_sim(lambda: _session(plan, [{}]), seed=0)
    faults = [s for s in spans.get_finished_spans() if s.name == semconv.HARNESS_FAULT]
    assert len(faults) == 1
    attributes = dict(faults[0].attributes or {})
    assert attributes[semconv.HARNESS_FAULT_TYPE] == "delay"
    assert attributes[semconv.HARNESS_FAULT_TARGET] == "ssh"
    assert attributes[semconv.HARNESS_FAULT_TRIGGER] == "method=tools/call,direction=downstream"
    assert isinstance(attributes[semconv.HARNESS_FAULT_DRAW], float)
    assert attributes["harness.fault.seconds"] == 3.0
    # The fault hit the response: its span sits under the client span of that request.
    (client,) = [s for s in spans.get_finished_spans() if s.name == "MCP send tools/call mem_ssh"]
    assert faults[0].parent is not None
    assert faults[0].parent.span_id == client.context.span_id


async def _llm_session(seed: int) -> tuple[list[str], list[dict[str, Any]]]:
    clock = LoopClock()
    fake = FakeAnthropic(
        ModelScript.model_validate(
            {"agents": {"main": {"turns": [{"text": "hi"}, {"text": "again"}]}}}
        ),
        clock=clock,
    )
    plan = FaultPlan.model_validate(
        [
            {
                "type": "llm",
                "target": "anthropic",
                "fault": {"kind": "rate_limit", "retry_after": 7},
            },
            {"type": "llm", "target": "anthropic", "at": 100, "fault": {"kind": "overloaded"}},
        ]
    )
    recorder = FaultRecorder(clock=clock)
    seen: list[str] = []
    async with anyio.create_task_group() as tg:
        await inject_llm_faults(
            plan, fake, clock=clock, rng=ChaosRandom(seed), recorder=recorder, task_group=tg
        )
        client = fake.async_client(max_retries=0)
        for _ in range(2):
            try:
                await client.messages.create(
                    model="claude-sonnet-4-6",
                    max_tokens=10,
                    messages=[{"role": "user", "content": "x"}],
                )
                seen.append(f"ok@{clock.now():.0f}")
            except Exception as exc:
                seen.append(f"{type(exc).__name__}@{clock.now():.0f}")
        await clock.sleep(101)
        try:
            await client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=10,
                messages=[{"role": "user", "content": "x"}],
            )
            seen.append("ok")
        except Exception as exc:
            seen.append(type(exc).__name__)
    return seen, [r.to_json() for r in recorder.records]


def test_llm_faults_map_onto_the_fake_api() -> None:
    seen, records = run_sim(lambda: _llm_session(0), seed=0).value
    assert seen == ["RateLimitError@0", "ok@0", "OverloadedError"]
    assert [(r["type"], r["fault"], r["trigger"]) for r in records] == [
        ("llm", "rate_limit", "at=0"),
        ("llm", "overloaded", "at=100"),
    ]
    assert records[1]["time"] == pytest.approx(100.0)


async def _reconnecting(
    plan: list[dict[str, Any]], *, timeout: float | None = None
) -> tuple[list[Any], list[dict[str, Any]]]:
    clock = LoopClock()
    fake = build_server("ssh", script=ServerScript(), clock=clock)
    recorder = FaultRecorder(clock=clock)
    wrap = transport_wrapper(
        FaultPlan.model_validate(plan).for_target("ssh"),
        "ssh",
        clock=clock,
        rng=ChaosRandom(0),
        recorder=recorder,
    )
    outcomes: list[Any] = []
    for _connection in range(2):
        async with Client(wrap(InMemoryTransport(fake.server)), mode="legacy") as client:
            for _ in range(2):
                try:
                    await client.call_tool("mem_ssh", ARGS, read_timeout_seconds=timeout)
                    outcomes.append("ok")
                except MCPError as exc:
                    outcomes.append(exc.error.code)
    return outcomes, [r.to_json() for r in recorder.records]


def test_fault_counts_span_reconnects_so_a_one_shot_kill_fires_once() -> None:
    plan = [{"type": "kill", "match": {"method": "tools/call", "nth": 2}}]
    outcomes, records = run_sim(lambda: _reconnecting(plan), seed=0).value
    assert outcomes == ["ok", -32000, "ok", "ok"]
    assert [(r["type"], r["connection"]) for r in records] == [("kill", 1)]
    plan = [
        {"type": "drop", "count": 3, "match": {"method": "tools/call", "direction": "downstream"}}
    ]
    outcomes, records = run_sim(lambda: _reconnecting(plan, timeout=5), seed=0).value
    assert outcomes == [-32001, -32001, -32001, "ok"]
    assert [r["connection"] for r in records] == [1, 1, 2]
