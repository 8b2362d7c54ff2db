"""``reset_peer``: reset the connection (the peer sees ECONNRESET) after ``timeout`` ms."""

from __future__ import annotations

from typing import ClassVar

import anyio

from harness.faults.toxics._base import Count, Toxic
from harness.faults.toxics._stub import ToxicStub

__all__ = ["ResetPeer"]


class ResetPeer(Toxic):
    """Data passes unchanged until ``timeout`` ms after the toxic started on the connection
    (0 = at once); then the connection is reset."""

    type_name: ClassVar[str] = "reset_peer"
    timeout: Count = 0

    async def pipe(self, stub: ToxicStub) -> None:
        async with anyio.create_task_group() as tg:

            async def relay() -> None:
                async for chunk in stub.chunks():
                    await stub.forward(chunk.data, chunk.timestamp)

            tg.start_soon(relay)
            await stub.sleep(self.timeout / 1000.0)
            stub.record("reset", timeout_ms=self.timeout)
            stub.close_connection(True)
            await anyio.sleep_forever()
