"""``bandwidth``: limit the rate to ``rate`` KB/s."""

from __future__ import annotations

from typing import ClassVar

from harness.faults.toxics._base import Count, Toxic
from harness.faults.toxics._stub import ToxicStub

__all__ = ["Bandwidth"]

_SLICE_SECONDS = 0.1


class Bandwidth(Toxic):
    """Data leaves at ``rate`` KB/s (1 KB = 1000 bytes; 0 = unlimited). Large chunks go out in
    100 ms slices, as in Toxiproxy, so the reader sees a steady trickle."""

    type_name: ClassVar[str] = "bandwidth"
    rate: Count = 0

    async def pipe(self, stub: ToxicStub) -> None:
        debt = 0.0  # seconds of transmission still owed for data already forwarded
        async for chunk in stub.chunks():
            if self.rate <= 0:
                await stub.forward(chunk.data, chunk.timestamp)
                continue
            bytes_per_second = self.rate * 1000
            slice_size = max(int(bytes_per_second * _SLICE_SECONDS), 1)
            data = chunk.data
            while len(data) > slice_size:
                await stub.sleep(_SLICE_SECONDS)
                await stub.forward(data[:slice_size], chunk.timestamp)
                data = data[slice_size:]
            debt += len(data) / bytes_per_second
            started = stub.clock.now()
            await stub.sleep(debt)
            debt -= stub.clock.now() - started
            await stub.forward(data, chunk.timestamp)
