"""Toxics as byte-stream transformers: units, defaults, virtual time, seeded determinism."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

from harness.chaos_random import ChaosRandom
from harness.faults.toxics import (
    Bandwidth,
    ChunkChannel,
    Latency,
    LimitData,
    ResetPeer,
    Slicer,
    SlowClose,
    StreamChunk,
    Timeout,
    Toxic,
    ToxicStub,
)


class FakeClock:
    """Virtual time: ``sleep`` records the request and advances ``now`` at once."""

    def __init__(self) -> None:
        self.time = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds
        await anyio.lowlevel.checkpoint()


class Harness:
    """One toxic between two channels, with recorded fault events and close requests."""

    def __init__(self, toxic: Toxic, chunks: list[bytes], *, seed: int = 1, end: bool = True):
        self.toxic = toxic
        self.clock = FakeClock()
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.closes: list[bool] = []
        self.input = ChunkChannel(capacity=1000)
        self.output = ChunkChannel(capacity=1000)
        for data in chunks:
            self.input.push_nowait(StreamChunk(data, self.clock.now()))
        if end:
            self.input.close()
        self.stub = ToxicStub(
            input=self.input,
            output=self.output,
            clock=self.clock,
            rng=ChaosRandom(seed),
            record=self._record,
            close_connection=self.closes.append,
        )

    def _record(self, event: str, **attributes: Any) -> None:
        self.records.append((event, attributes))

    async def run(self) -> list[bytes]:
        await self.toxic.pipe(self.stub)
        return self.forwarded()

    def forwarded(self) -> list[bytes]:
        return [chunk.data for chunk in self.output.drain()]


def test_defaults_and_type_names_follow_toxiproxy() -> None:
    assert Latency().attributes() == {"latency": 0, "jitter": 0}
    assert Bandwidth().attributes() == {"rate": 0}
    assert SlowClose().attributes() == {"delay": 0}
    assert Timeout().attributes() == {"timeout": 0}
    assert ResetPeer().attributes() == {"timeout": 0}
    assert Slicer().attributes() == {"average_size": 0, "size_variation": 0, "delay": 0}
    assert LimitData().attributes() == {"bytes": 0}
    names = [cls.type_name for cls in (Latency, Bandwidth, SlowClose, Timeout, ResetPeer)]
    assert names == ["latency", "bandwidth", "slow_close", "timeout", "reset_peer"]
    assert (Slicer.type_name, LimitData.type_name) == ("slicer", "limit_data")


async def test_latency_delays_from_arrival_so_a_burst_is_not_serialized() -> None:
    harness = Harness(Latency(latency=100), [b"a", b"b", b"c"])
    assert await harness.run() == [b"a", b"b", b"c"]
    # All three arrived at t=0: only the first waits the full 100 ms.
    assert harness.clock.sleeps == [pytest.approx(0.1), 0.0, 0.0]
    assert harness.clock.time == pytest.approx(0.1)


def _jitter_sequence(seed: int) -> list[float]:
    harness = Harness(Latency(latency=100, jitter=40), [], seed=seed)
    return [Latency(latency=100, jitter=40).delay(harness.stub) for _ in range(20)]


def test_latency_jitter_is_seeded_and_bounded() -> None:
    first, again, other = _jitter_sequence(7), _jitter_sequence(7), _jitter_sequence(8)
    assert first == again
    assert first != other
    assert all(0.06 <= delay <= 0.14 for delay in first)
    assert len(set(first)) > 1


async def test_latency_jitter_drives_the_sleeps_deterministically() -> None:
    runs = []
    for _ in range(2):
        harness = Harness(Latency(latency=10, jitter=5), [b"x"] * 5, seed=3)
        await harness.run()
        runs.append(harness.clock.sleeps)
    assert runs[0] == runs[1]


async def test_bandwidth_slices_per_100ms_and_owes_the_rest() -> None:
    harness = Harness(Bandwidth(rate=1), [b"x" * 250])  # 1 KB/s = 1000 bytes/s
    out = await harness.run()
    assert [len(part) for part in out] == [100, 100, 50]
    assert harness.clock.sleeps == [pytest.approx(0.1), pytest.approx(0.1), pytest.approx(0.05)]


async def test_bandwidth_zero_rate_is_unlimited() -> None:
    harness = Harness(Bandwidth(rate=0), [b"x" * 5000])
    assert await harness.run() == [b"x" * 5000]
    assert harness.clock.sleeps == []


async def test_slow_close_delays_only_the_end() -> None:
    harness = Harness(SlowClose(delay=500), [b"ab", b"cd"])
    assert await harness.run() == [b"ab", b"cd"]
    assert harness.clock.sleeps == [pytest.approx(0.5)]


async def test_timeout_closes_after_the_timeout_without_passing_data() -> None:
    harness = Harness(Timeout(timeout=200), [b"request"], end=False)
    assert await harness.run() == []
    assert harness.clock.sleeps == [pytest.approx(0.2)]
    assert harness.closes == [False]
    assert harness.records[0][0] == "closed"


async def test_timeout_zero_holds_the_data_until_interrupted() -> None:
    harness = Harness(Timeout(timeout=0), [b"held"], end=False)
    holding = anyio.Event()
    harness.stub.record = lambda event, **_: holding.set() if event == "holding" else None
    async with anyio.create_task_group() as tg:
        tg.start_soon(harness.toxic.pipe, harness.stub)
        await holding.wait()
        tg.cancel_scope.cancel()
    # Nothing was consumed: the chain rebuild hands the held data on when the toxic goes away.
    assert [chunk.data for chunk in harness.input.drain()] == [b"held"]
    assert harness.forwarded() == []
    assert harness.closes == []


async def test_reset_peer_passes_data_then_resets_after_the_timeout() -> None:
    harness = Harness(ResetPeer(timeout=100), [b"before"], end=False)
    with anyio.CancelScope() as scope:
        harness.stub.close_connection = lambda reset: (harness.closes.append(reset), scope.cancel())
        await harness.toxic.pipe(harness.stub)
    assert harness.forwarded() == [b"before"]
    assert harness.closes == [True]
    assert harness.clock.sleeps == [pytest.approx(0.1)]
    assert harness.records == [("reset", {"timeout_ms": 100})]


def _slices(seed: int) -> list[int]:
    toxic = Slicer(average_size=10, size_variation=4)
    return toxic.cuts(200, ChaosRandom(seed))


def test_slicer_cuts_are_seeded_and_sized() -> None:
    assert _slices(5) == _slices(5)
    assert _slices(5) != _slices(6)
    bounds = _slices(5)
    sizes = [b - a for a, b in itertools.pairwise(bounds)]
    assert bounds[0] == 0
    assert bounds[-1] == 200
    assert all(0 < size <= 14 for size in sizes)


async def test_slicer_reassembles_with_delay_between_slices() -> None:
    data = bytes(range(256)) * 2
    harness = Harness(Slicer(average_size=32, size_variation=8, delay=50), [data])
    out = await harness.run()
    assert b"".join(out) == data
    assert len(out) > 5
    assert harness.clock.sleeps == [pytest.approx(50e-6)] * (len(out) - 1)


async def test_limit_data_passes_the_limit_then_closes() -> None:
    harness = Harness(LimitData(bytes=10), [b"12345678", b"abcdefgh", b"never"], end=False)
    assert await harness.run() == [b"12345678", b"ab"]
    assert harness.closes == [False]
    assert harness.stub.state["passed"] == 10
    assert harness.records == [("limit_reached", {"bytes": 10})]
    assert harness.stub.holding is None


async def test_limit_data_count_survives_a_new_stub_with_the_same_state() -> None:
    first = Harness(LimitData(bytes=6), [b"abcd"])
    await first.run()
    second = Harness(LimitData(bytes=6), [b"efgh"], end=False)
    second.stub.state = first.stub.state
    assert await second.run() == [b"ef"]
    assert second.closes == [False]
