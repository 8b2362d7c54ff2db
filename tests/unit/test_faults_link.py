"""A toxic link on in-memory byte streams: fast path, live chain changes without loss or
reordering, seeded toxicity, fault records and the ``harness.fault`` span."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness.chaos_random import ChaosRandom
from harness.clock import LoopClock
from harness.faults.link import ToxicLink
from harness.faults.records import FaultRecorder
from harness.faults.toxic_set import ToxicSet
from harness.faults.toxics import ToxicSpec


class MemorySource:
    def __init__(self, receive: MemoryObjectReceiveStream[bytes]) -> None:
        self._receive = receive

    async def receive(self) -> bytes:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            return b""


class MemorySink:
    def __init__(self, send: MemoryObjectSendStream[bytes]) -> None:
        self._send = send
        self.eof = False

    async def send(self, data: bytes) -> None:
        self._send.send_nowait(data)
        await anyio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        self.eof = True
        await self._send.aclose()


class Rig:
    def __init__(self, toxics: ToxicSet, *, seed: int = 1, name: str = "c1") -> None:
        self.input, self._source = anyio.create_memory_object_stream[bytes](100)
        sink_send, self.output = anyio.create_memory_object_stream[bytes](100)
        self.sink = MemorySink(sink_send)
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.resets = 0
        self.link = ToxicLink(
            source=MemorySource(self._source),
            sink=self.sink,
            toxics=toxics,
            stream="downstream",
            clock=LoopClock(),
            rng=ChaosRandom(seed).fork(name),
            on_event=lambda action, spec, **details: self.events.append(
                (action, spec.name, details)
            ),
            reset_connection=self._reset,
        )

    def _reset(self) -> None:
        self.resets += 1

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for stream in (self.input, self._source, self.sink._send, self.output):
            stream.close()

    async def read(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            data += await self.output.receive()
        return data


async def _wait_for(events: list[Any], action: str) -> None:
    # The link records synchronously; yield until the action shows up.
    while not any(event[0] == action for event in events):
        await anyio.lowlevel.checkpoint()


async def test_fast_path_copies_and_forwards_eof() -> None:
    toxics = ToxicSet()
    with Rig(toxics) as rig:
        async with anyio.create_task_group() as tg:
            tg.start_soon(rig.link.run)
            await rig.input.send(b"hello ")
            await rig.input.send(b"world")
            assert await rig.read(11) == b"hello world"
            await rig.input.aclose()
        assert rig.sink.eof
        assert rig.events == []


async def test_live_changes_never_lose_or_reorder_data() -> None:
    toxics = ToxicSet()
    with Rig(toxics) as rig:
        async with anyio.create_task_group() as tg:
            tg.start_soon(rig.link.run)
            await rig.input.send(b"a")
            assert await rig.read(1) == b"a"
            # A slicer in front of a holding timeout: data waits in two stages of the chain.
            toxics.add(ToxicSpec.parse({"type": "slicer", "attributes": {"average_size": 2}}))
            toxics.add(ToxicSpec.parse({"type": "timeout", "name": "hold"}))
            await rig.input.send(b"bcdefgh")
            await _wait_for(rig.events, "holding")
            await rig.input.send(b"ijk")
            toxics.replace(toxics.get("slicer_downstream").updated({"attributes": {"delay": 1}}))
            await rig.input.send(b"lmn")
            toxics.remove("hold")
            assert await rig.read(13) == b"bcdefghijklmn"
            toxics.clear()
            await rig.input.send(b"op")
            assert await rig.read(2) == b"op"
            await rig.input.aclose()
        assert rig.sink.eof
        applied = [name for action, name, _ in rig.events if action == "applied"]
        # The slicer was re-decided after its update (a new generation).
        assert applied == ["slicer_downstream", "hold", "slicer_downstream"]


async def test_graceful_close_from_a_toxic_ends_the_link() -> None:
    toxics = ToxicSet()
    toxics.add(ToxicSpec.parse({"type": "limit_data", "attributes": {"bytes": 3}}))
    with Rig(toxics) as rig:
        async with anyio.create_task_group() as tg:
            tg.start_soon(rig.input.send, b"abcdef")
            closing = await rig.link.run()
            tg.cancel_scope.cancel()
        assert closing is True
        assert await rig.read(3) == b"abc"
        assert not rig.sink.eof  # the connection closes; no half-close
        assert [event[0] for event in rig.events] == ["applied", "limit_reached"]


async def test_reset_from_a_toxic_reaches_the_connection() -> None:
    toxics = ToxicSet()
    toxics.add(ToxicSpec.parse({"type": "reset_peer"}))
    with Rig(toxics) as rig:
        with anyio.CancelScope() as scope:
            rig.link._reset_connection = scope.cancel
            await rig.link.run()
        assert [event[0] for event in rig.events] == ["applied", "reset"]


def _decisions(seed: int) -> list[bool]:
    toxics = ToxicSet()
    toxics.add(ToxicSpec.parse({"type": "latency", "toxicity": 0.5}))
    entry = toxics.chain("downstream")[0]
    decisions = []
    for n in range(32):
        with Rig(toxics, seed=seed, name=f"c{n}") as rig:
            decisions.append(rig.link._state(entry).applies)
    return decisions


def test_toxicity_decisions_are_seeded_per_connection() -> None:
    first = _decisions(11)
    assert first == _decisions(11)
    assert first != _decisions(12)
    assert 4 < sum(first) < 28


def test_applied_record_carries_the_draw() -> None:
    toxics = ToxicSet()
    toxics.add(ToxicSpec.parse({"type": "latency", "toxicity": 1.0}))
    with Rig(toxics) as rig:
        rig.link._state(toxics.chain("downstream")[0])
        action, name, details = rig.events[0]
        assert (action, name, details["trigger"]) == ("applied", "latency_downstream", "toxicity")
        assert 0 <= details["draw"] < 1


async def test_recorder_writes_json_lines_spans_and_subscribers(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    events = tmp_path / "events.jsonl"
    recorder = FaultRecorder(events_path=events, tracer_provider=provider)
    seen: list[str] = []
    unsubscribe = recorder.subscribe(lambda record: seen.append(record.kind))
    recorder.record("applied", type="latency", target="db", name="l", draw=0.25, connection=3)
    unsubscribe()
    recorder.record("removed", type="latency", target="db", name="l", trigger="api")
    recorder.close()
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["applied", "removed"]
    assert lines[0] == {
        "source": "fault",
        "kind": "applied",
        "time": pytest.approx(lines[0]["time"]),
        "type": "latency",
        "target": "db",
        "name": "l",
        "draw": 0.25,
        "connection": 3,
    }
    assert seen == ["applied"]
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["harness.fault", "harness.fault"]
    assert spans[0].attributes is not None
    assert spans[0].attributes["harness.fault.draw"] == 0.25
    assert spans[1].attributes is not None
    assert spans[1].attributes["harness.fault.trigger"] == "api"
