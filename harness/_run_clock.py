"""Records of other processes on the run's clock.

Each process of a live run (a fake server, an interposer) keeps its own clock, zero at its own
start, and stamps every record with ``wall``, the Unix time every process shares. Given the
Unix time of the run clock's zero and the time scale, a record's own time moves to the run's
clock (kept as ``process_time``), so the records of every process merge in one order.
"""

from __future__ import annotations

from typing import Any

__all__ = ["on_run_clock"]


def on_run_clock(row: dict[str, Any], *, origin: float | None, scale: float) -> dict[str, Any]:
    """A run record (``harness.records``) with ``time`` in scenario seconds since ``origin``
    (Unix time) and ``clock: "run"``; unchanged when there is no origin or it has no ``wall``."""
    wall = row.get("wall")
    if origin is None or not isinstance(wall, int | float):
        return row
    row["process_time"] = row.get("time")
    row["time"] = round((wall - origin) / scale, 6)
    row["clock"] = "run"
    return row
