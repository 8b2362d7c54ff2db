"""Records of other processes on the run's clock.

Each process of a live run (a fake server, an interposer) keeps its own clock, zero at its own
start, and stamps every record with ``wall``, the Unix time every process shares. Given the
Unix time of the run clock's zero and the time scale, a record's own time moves to the run's
clock (kept as ``process_<key>``), so the records of every process merge in one order.
"""

from __future__ import annotations

from typing import Any

__all__ = ["on_run_clock"]


def on_run_clock(
    row: dict[str, Any], *, origin: float | None, scale: float, key: str = "time"
) -> dict[str, Any]:
    """``row`` with ``row[key]`` in scenario seconds since ``origin`` (Unix time) and
    ``clock: "run"``; unchanged when there is no origin or the row has no ``wall``."""
    wall = row.get("wall")
    if origin is None or not isinstance(wall, int | float):
        return row
    row[f"process_{key}"] = row.get(key)
    row[key] = round((wall - origin) / scale, 6)
    row["clock"] = "run"
    return row
