"""``timeout``: stop all data; close the connection after ``timeout`` ms (0 = hold the data until
the toxic is removed)."""

from __future__ import annotations

from typing import ClassVar

import anyio

from harness.faults.toxics._base import Count, Toxic
from harness.faults.toxics._stub import ToxicStub

__all__ = ["Timeout"]


class Timeout(Toxic):
    """Nothing is read while the toxic is active, so data stays queued in front of it: when the
    toxic is removed, the held data flows on unchanged. With ``timeout > 0`` the connection is
    closed once the timeout has passed (no data got through)."""

    type_name: ClassVar[str] = "timeout"
    timeout: Count = 0

    async def pipe(self, stub: ToxicStub) -> None:
        if self.timeout > 0:
            await stub.sleep(self.timeout / 1000.0)
            stub.record("closed", timeout_ms=self.timeout, held_chunks=len(stub.input))
            stub.close_connection(False)
            return
        await stub.input.wait_readable()
        if len(stub.input):
            stub.record("holding", held_chunks=len(stub.input))
        await anyio.sleep_forever()
