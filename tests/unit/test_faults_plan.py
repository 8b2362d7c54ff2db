"""The fault plan format (files, embedded lists, bad input) and the frame engine's decisions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from harness.chaos_random import ChaosRandom
from harness.errors import FaultConfigError
from harness.faults.frame_engine import FrameEngine, FrameInfo, Inject, Signal, info_from_json
from harness.faults.plan import (
    DelayFault,
    FaultPlan,
    KillFault,
    LlmFault,
    ToxicFault,
)
from harness.faults.records import FaultRecorder

PLAN_YAML = """\
faults:
  - {type: delay, target: ssh, seconds: 2, match: {method: tools/call, direction: downstream}}
  - name: slow-pipe
    type: toxic
    target: ssh
    toxic: {type: latency, stream: upstream, attributes: {latency: 100, jitter: 5}}
  - {type: kill, signal: SIGTERM, at: 12.5}
  - {type: llm, target: anthropic, agent: main, count: 2,
     fault: {kind: rate_limit, retry_after: 3}}
"""


def test_a_plan_file_loads_with_default_names_and_targets(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN_YAML)
    plan = FaultPlan.load(path)
    assert [f.name for f in plan] == ["delay_0", "slow-pipe", "kill_2", "llm_3"]
    assert isinstance(plan.faults[0], DelayFault)
    assert isinstance(plan.faults[2], KillFault)
    toxic = plan.faults[1]
    assert isinstance(toxic, ToxicFault)
    spec = toxic.spec()
    assert (spec.name, spec.type, spec.stream, spec.toxic.attributes()) == (
        "slow-pipe",
        "latency",
        "upstream",
        {"latency": 100, "jitter": 5},
    )
    llm = plan.llm_faults()
    assert len(llm) == 1
    assert isinstance(llm[0], LlmFault)
    assert llm[0].fault.retry_after == 3


def test_embedded_list_and_json_forms_are_the_same_plan() -> None:
    entries: list[dict[str, Any]] = [
        {"type": "drop", "match": {"method": "tools/call", "nth": 2}},
        {"type": "freeze", "seconds": 3, "match": {"tool": "mem_ssh"}},
    ]
    assert FaultPlan.model_validate(entries) == FaultPlan.model_validate({"faults": entries})
    assert FaultPlan.parse('{"faults": []}') == FaultPlan.model_validate(None)


def test_a_plan_embeds_as_a_list_field_with_errors_at_the_entry() -> None:
    class Scenario(BaseModel):
        faults: FaultPlan = Field(default_factory=FaultPlan)

    assert len(Scenario().faults) == 0
    embedded = Scenario.model_validate({"faults": [{"type": "kill", "at": 3}]})
    assert [f.name for f in embedded.faults] == ["kill_0"]
    with pytest.raises(ValidationError) as caught:
        Scenario.model_validate({"faults": [{"type": "delay", "match": {}, "seconds": -1}]})
    assert caught.value.errors()[0]["loc"] == ("faults", 0, "delay", "seconds")


def test_targets_select_entries() -> None:
    plan = FaultPlan.parse(PLAN_YAML)
    assert [f.name for f in plan.for_target("ssh")] == ["delay_0", "slow-pipe", "kill_2"]
    assert [f.name for f in plan.for_target("vault")] == ["kill_2"]
    assert [f.name for f in plan.for_target("anthropic")] == ["llm_3"]
    assert [s.name for s in plan.toxics("ssh")] == ["slow-pipe"]
    assert plan.toxics("vault") == []
    assert [f.name for f in plan.for_target("ssh").frame_faults()] == ["delay_0", "kill_2"]


BAD_PLANS = [
    ("- {type: boom}\n", 1, "faults.0", "does not match any of the expected tags"),
    ("- {type: delay, match: {method: x}}\n", 1, "faults.0.seconds", "Field required"),
    ("- type: delay\n  match: {}\n  seconds: -1\n", 3, "faults.0.seconds", "greater than or equal"),
    ("- {type: drop, match: {nth: 0}}\n", 1, "faults.0.match.nth", "greater than or equal to 1"),
    ("- {type: drop, match: {direction: sideways}}\n", 1, "faults.0.match.direction", "upstream"),
    ("- {type: drop, match: {}, count: 0}\n", 1, "faults.0.count", "at least 1"),
    ("- {type: drop, match: {}, probability: 2}\n", 1, "faults.0.probability", "less than"),
    ("- {type: drop, match: {}, colour: red}\n", 1, "faults.0.colour", "Extra inputs"),
    ("- {type: kill, signal: SIGHUP, at: 1}\n", 1, "faults.0.signal", "SIGKILL"),
    ("- {type: kill, at: 1, match: {}}\n", 1, "faults.0", "exactly one of 'match' or 'at'"),
    ("- {type: freeze, seconds: 1}\n", 1, "faults.0", "exactly one of 'match' or 'at'"),
    (
        "- type: toxic\n  toxic: {type: latency, attributes: {latency: -5}}\n",
        2,
        "faults.0.toxic",
        "attributes.latency",
    ),
    ("- {type: toxic, toxic: {type: flood}}\n", 1, "faults.0.toxic", "invalid toxic type"),
    (
        "- {type: llm, fault: {kind: rate_limit, retry_after: -1}}\n",
        1,
        "faults.0.fault.retry_after",
        "greater than or equal to 0 (got -1)",
    ),
    (
        "- {type: drop, name: a, match: {}}\n- {type: drop, name: a, match: {}}\n",
        2,
        "faults.1.name",
        "duplicate fault name 'a'",
    ),
    ("faults: 3\n", 1, "faults", "valid list"),
    ("42\n", None, None, "a list of faults"),
    ("- [unclosed\n", 2, None, "not valid YAML"),
]


@pytest.mark.parametrize(("text", "line", "field", "message"), BAD_PLANS)
def test_bad_plans_name_file_line_and_field(
    tmp_path: Path, text: str, line: int | None, field: str | None, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(FaultConfigError) as caught:
        FaultPlan.load(path)
    error = caught.value
    assert error.path == str(path)
    assert error.line == line
    assert error.field == field
    assert message in str(error)
    assert str(error).startswith(f"{path}")


def test_a_missing_plan_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(FaultConfigError, match="cannot read the fault plan"):
        FaultPlan.load(tmp_path / "nope.yaml")


# -- the frame engine ---------------------------------------------------------------------------


def _engine(entries: list[dict[str, Any]], seed: int = 0) -> tuple[FrameEngine, FaultRecorder]:
    recorder = FaultRecorder(clock=_Frozen())
    plan = FaultPlan.model_validate(entries)
    engine = FrameEngine(
        plan.frame_faults(), target="ssh", rng=ChaosRandom(seed), recorder=recorder
    )
    return engine, recorder


class _Frozen:
    def now(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("the engine never waits")


def _call(ident: int, tool: str = "mem_ssh") -> FrameInfo:
    return info_from_json(
        {"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": {"name": tool}},
        "upstream",
    )


def _result(ident: int) -> FrameInfo:
    return info_from_json({"jsonrpc": "2.0", "id": ident, "result": {}}, "downstream")


def test_frames_are_classified() -> None:
    assert _call(3) == FrameInfo("upstream", "request", "tools/call", 3, "mem_ssh")
    cancel = info_from_json(
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}},
        "upstream",
    )
    assert (cancel.kind, cancel.cancels) == ("notification", 3)
    assert info_from_json({"jsonrpc": "2.0", "id": 3, "error": {}}, "downstream").kind == "response"
    assert info_from_json([1, 2], "downstream").kind == "invalid"
    assert info_from_json({"id": True, "result": 1}, "downstream").id is None


def test_responses_match_the_method_and_tool_of_their_request() -> None:
    engine, recorder = _engine(
        [
            {
                "type": "drop",
                "count": "all",
                "match": {"tool": "vault_get", "direction": "downstream"},
            }
        ]
    )
    assert engine.on_frame(_call(1, "mem_ssh")).untouched
    assert engine.on_frame(_call(2, "vault_get")).untouched
    assert engine.on_frame(_result(1)).untouched
    assert engine.on_frame(_result(2)).drop
    # Unknown ids (never requested) carry no method: they do not match.
    assert engine.on_frame(_result(99)).untouched
    assert [r.details["request_id"] for r in recorder.records] == ["2"]


def test_nth_and_count_pick_the_frames_hit() -> None:
    engine, _ = _engine(
        [{"type": "delay", "seconds": 1, "match": {"method": "tools/call", "nth": 3}}]
    )
    assert [engine.on_frame(_call(i)).delay for i in range(1, 6)] == [0, 0, 1.0, 0, 0]
    engine, _ = _engine([{"type": "duplicate", "count": 2, "match": {"method": "tools/call"}}])
    assert [engine.on_frame(_call(i)).copies for i in range(1, 5)] == [1, 1, 0, 0]


def test_kill_counts_requests_only_and_runs_after_delivery() -> None:
    engine, recorder = _engine(
        [{"type": "kill", "signal": "close_stdin", "match": {"method": "tools/call", "nth": 2}}]
    )
    assert engine.on_frame(_call(1)).untouched
    assert engine.on_frame(_result(1)).untouched
    verdict = engine.on_frame(_call(2))
    assert verdict.after == [Signal("kill", signal="close_stdin")]
    assert not verdict.drop
    assert recorder.records[0].details["signal"] == "close_stdin"


def _cancel(ident: int) -> FrameInfo:
    return info_from_json(
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": ident}},
        "upstream",
    )


def test_late_response_is_held_until_the_cancel_which_never_reaches_the_server() -> None:
    entries = [{"type": "late_response", "delay": 4, "match": {"method": "tools/call"}}]
    engine, recorder = _engine(entries)
    assert engine.on_frame(_call(7)).untouched
    assert engine.on_frame(_result(7)).hold == 7
    verdict = engine.on_frame(_cancel(7))
    assert verdict.drop
    assert verdict.release == [(7, 4.0)]
    assert [r.kind for r in recorder.records] == ["applied", "released"]
    # Cancelled before the server answered: the answer goes out late, by ``delay``.
    engine, _ = _engine(entries)
    engine.on_frame(_call(8))
    assert engine.on_frame(_cancel(8)).drop
    assert engine.on_frame(_result(8)).delay == 4.0
    # Other cancels pass.
    assert engine.on_frame(_cancel(9)).untouched


def test_injected_frames_never_reuse_an_id_and_garbage_is_never_json() -> None:
    engine, _ = _engine(
        [
            {"type": "unknown_id", "match": {"method": "tools/call"}, "count": "all"},
            {"type": "garbage", "size": 200, "match": {"method": "tools/call"}, "count": "all"},
        ]
    )
    for ident in range(1, 30):
        verdict = engine.on_frame(_call(ident))
        inject, garbage = verdict.after
        assert isinstance(inject, Inject)
        assert isinstance(garbage, Inject)
        assert inject.message is not None
        assert inject.message["id"] not in range(1, 30)
        assert garbage.raw is not None
        assert b"\n" not in garbage.raw
        with pytest.raises(UnicodeDecodeError):
            garbage.raw.decode()


def test_same_seed_same_decisions() -> None:
    entries = [
        {"type": "drop", "probability": 0.3, "count": "all", "match": {"method": "tools/call"}}
    ]

    def decisions(seed: int) -> list[bool]:
        engine, _ = _engine(entries, seed)
        return [engine.on_frame(_call(i)).drop for i in range(40)]

    assert decisions(3) == decisions(3)
    assert 0 < sum(decisions(3)) < 40
    assert decisions(3) != decisions(4)


def test_timed_faults_fire_once_in_time_order() -> None:
    engine, recorder = _engine(
        [
            {"type": "freeze", "seconds": 2, "at": 9},
            {"type": "garbage", "at": 1, "stream": "upstream"},
        ]
    )
    assert [f.name for f in engine.timed()] == ["garbage_1", "freeze_0"]
    (garbage,) = engine.fire_timed("garbage_1")
    assert isinstance(garbage, Inject)
    assert garbage.stream == "upstream"
    assert engine.fire_timed("garbage_1") == []
    assert engine.fire_timed("freeze_0") == [Signal("freeze", seconds=2.0)]
    assert [r.trigger for r in recorder.records] == ["at=1", "at=9"]


def test_live_mode_wraps_only_servers_with_faults(tmp_path: Path) -> None:
    from mcp import StdioServerParameters

    from harness.faults.live import interposed

    plan = FaultPlan.parse(PLAN_YAML)
    params = StdioServerParameters(command="srv", args=["-x"], env={"A": "1"}, cwd=str(tmp_path))
    wrapped = interposed(params, plan, name="ssh", workdir=tmp_path, seed=7, time_scale=0.01)
    assert wrapped.command == sys.executable
    assert wrapped.args[:3] == ["-m", "harness", "interpose"]
    assert wrapped.args[-3:] == ["--", "srv", "-x"]
    assert (wrapped.env, wrapped.cwd) == (params.env, params.cwd)
    options = dict(zip(wrapped.args[3:-3:2], wrapped.args[4:-3:2], strict=True))
    assert options == {
        "--plan": str(tmp_path / "faults-ssh.json"),
        "--name": "ssh",
        "--seed": "7",
        "--time-scale": "0.01",
    }
    written = FaultPlan.load(tmp_path / "faults-ssh.json")
    assert written == plan.for_target("ssh")
    assert interposed(params, plan, name="anthropic", workdir=tmp_path) is params
