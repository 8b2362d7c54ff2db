"""Fault counts shared through a file: the engines of two processes of one server (an
interposer each) count one sequence of frames, so a one-shot fault fires once per server."""

from __future__ import annotations

from pathlib import Path

from harness.chaos_random import ChaosRandom
from harness.faults.frame_engine import FrameEngine, FrameInfo
from harness.faults.plan import FaultPlan
from harness.faults.records import FaultRecorder
from harness.faults.shared_counts import SharedCounts

PLAN = FaultPlan.model_validate(
    [
        {"type": "kill", "target": "ssh", "match": {"method": "tools/call", "nth": 2}},
        {"type": "drop", "target": "ssh", "probability": 0.5, "match": {"method": "ping"}},
    ]
)


def _engine(counts: SharedCounts | None, recorder: FaultRecorder) -> FrameEngine:
    # Every process of a server gets the same plan and seed.
    return FrameEngine(
        PLAN.frame_faults(), target="ssh", rng=ChaosRandom(7), recorder=recorder, shared=counts
    )


def _call(engine: FrameEngine, ident: int) -> bool:
    verdict = engine.on_frame(FrameInfo("upstream", "request", "tools/call", ident, "mem_ssh"))
    return bool(verdict.after)


async def test_a_respawned_server_is_not_killed_again(tmp_path: Path) -> None:
    counts = SharedCounts(tmp_path / "ssh.fault-counts.json")
    recorder = FaultRecorder()
    first, second = _engine(counts, recorder), _engine(counts, recorder)
    assert [_call(first, 1), _call(first, 2)] == [False, True]
    # The server was killed; its client started it anew behind a new interposer.
    assert [_call(second, 1), _call(second, 2), _call(second, 3)] == [False, False, False]
    assert [r.type for r in recorder.records] == ["kill"]


async def test_without_the_file_each_process_counts_for_itself(tmp_path: Path) -> None:
    recorder = FaultRecorder()
    first, second = _engine(None, recorder), _engine(None, recorder)
    assert [_call(first, 1), _call(first, 2)] == [False, True]
    assert [_call(second, 1), _call(second, 2)] == [False, True]


async def test_draws_go_on_where_the_other_process_stopped(tmp_path: Path) -> None:
    def drops(engines: list[FrameEngine]) -> list[bool]:
        return [
            engines[i % len(engines)].on_frame(FrameInfo("upstream", "request", "ping", i)).drop
            for i in range(12)
        ]

    alone = drops([_engine(None, FaultRecorder())])
    counts = SharedCounts(tmp_path / "counts.json")
    shared = drops([_engine(counts, FaultRecorder()), _engine(counts, FaultRecorder())])
    # Two processes taking turns draw the one seeded sequence a single engine draws.
    assert shared == alone
    assert any(alone)
    assert not all(alone)
