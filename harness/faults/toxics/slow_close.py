"""``slow_close``: delay the close of the stream by ``delay`` ms."""

from __future__ import annotations

from typing import ClassVar

from harness.faults.toxics._base import Count, Toxic
from harness.faults.toxics._stub import ToxicStub

__all__ = ["SlowClose"]


class SlowClose(Toxic):
    """Data passes unchanged; when the input ends, the end reaches the output ``delay`` ms
    later."""

    type_name: ClassVar[str] = "slow_close"
    delay: Count = 0

    async def pipe(self, stub: ToxicStub) -> None:
        async for chunk in stub.chunks():
            await stub.forward(chunk.data, chunk.timestamp)
        await stub.sleep(self.delay / 1000.0)
