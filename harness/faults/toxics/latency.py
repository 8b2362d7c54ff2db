"""``latency``: delay every chunk by ``latency`` ms ± ``jitter`` ms."""

from __future__ import annotations

from typing import ClassVar

from harness.faults.toxics._base import Count, Toxic
from harness.faults.toxics._stub import ToxicStub

__all__ = ["Latency"]


class Latency(Toxic):
    """Each chunk leaves ``latency`` ms (plus a uniform draw in [-jitter, +jitter]) after it
    arrived. Delays are counted from arrival, as in Toxiproxy, so a burst is not serialized."""

    type_name: ClassVar[str] = "latency"
    latency: Count = 0
    jitter: Count = 0

    def delay(self, stub: ToxicStub) -> float:
        """The next chunk's delay in seconds (draws from the stub's seeded stream)."""
        millis = float(self.latency)
        if self.jitter > 0:
            millis += stub.rng.uniform(-self.jitter, self.jitter)
        return max(millis, 0.0) / 1000.0

    async def pipe(self, stub: ToxicStub) -> None:
        async for chunk in stub.chunks():
            wait = chunk.timestamp + self.delay(stub) - stub.clock.now()
            await stub.sleep(max(wait, 0.0))
            await stub.forward(chunk.data, chunk.timestamp)
