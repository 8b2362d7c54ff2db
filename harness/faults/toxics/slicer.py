"""``slicer``: cut chunks into slices of about ``average_size`` bytes, ``delay`` µs apart."""

from __future__ import annotations

from typing import ClassVar

from harness.chaos_random import ChaosRandom
from harness.faults.toxics._base import Count, Toxic
from harness.faults.toxics._stub import ToxicStub

__all__ = ["Slicer"]


class Slicer(Toxic):
    """Each chunk is split by recursive bisection (as in Toxiproxy): a piece no longer than
    ``average_size + size_variation`` is a slice; otherwise it is cut near its middle, the cut
    moved by a seeded draw in [-size_variation, size_variation)."""

    type_name: ClassVar[str] = "slicer"
    average_size: Count = 0
    size_variation: Count = 0
    delay: Count = 0

    def cuts(self, length: int, rng: ChaosRandom) -> list[int]:
        """Slice boundaries of a chunk of ``length`` bytes: ``[0, ..., length]``."""
        bounds = [0]
        pending = [(0, length)]
        while pending:
            start, end = pending.pop()
            if self.average_size <= 0 or (end - start) - self.average_size <= self.size_variation:
                bounds.append(end)
                continue
            mid = start + (end - start) // 2
            if self.size_variation > 0:
                mid += rng.randint(0, 2 * self.size_variation - 1) - self.size_variation
            mid = min(max(mid, start + 1), end - 1)
            # Right half first on the stack so the left half is cut (and emitted) first.
            pending.append((mid, end))
            pending.append((start, mid))
        return bounds

    async def pipe(self, stub: ToxicStub) -> None:
        async for chunk in stub.chunks():
            bounds = self.cuts(len(chunk.data), stub.rng)
            for index in range(1, len(bounds)):
                if index > 1:
                    await stub.sleep(self.delay / 1_000_000.0)
                part = chunk.data[bounds[index - 1] : bounds[index]]
                await stub.forward(part, chunk.timestamp)
