"""``limit_data``: close the connection once ``bytes`` bytes have passed."""

from __future__ import annotations

from typing import ClassVar

from harness.faults.toxics._base import Count, Toxic
from harness.faults.toxics._stub import ToxicStub

__all__ = ["LimitData"]


class LimitData(Toxic):
    """At most ``bytes`` bytes pass in this direction; then the connection is closed. The count
    survives changes to other toxics on the same connection."""

    type_name: ClassVar[str] = "limit_data"
    bytes: Count = 0

    async def pipe(self, stub: ToxicStub) -> None:
        async for chunk in stub.chunks():
            passed: int = stub.state.get("passed", 0)
            allowed = max(self.bytes - passed, 0)
            data = chunk.data[:allowed]
            if data:
                await stub.forward(data, chunk.timestamp)
                stub.state["passed"] = passed + len(data)
            if passed + len(data) >= self.bytes:
                stub.drop()
                stub.record("limit_reached", bytes=self.bytes)
                stub.close_connection(False)
                return
