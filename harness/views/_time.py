"""Run-clock times as people read them (the report's script mirrors ``fmt`` and ``RunClock``).

Durations read as ``250 ms``, ``1.5 s``, ``150 s``, ``13 h 00 min``. A moment of a run reads as
seconds on its clock (``150.1 s``), or, when the run spans an hour or more and its scenario has
a start, as the time of day on the scenario's clock: the blog review scheduled thirteen hours
into a run that starts at 07:00 reads ``20:00:00``, not ``13:00:00``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = ["RunClock", "fmt"]

_HOUR = 3600.0


def fmt(seconds: float) -> str:
    """A duration: ``250 ms``, ``1.5 s``, ``150 s``; from an hour on ``13 h 05 min``."""
    if abs(seconds) >= _HOUR:
        minutes = round(abs(seconds) / 60)
        sign = "-" if seconds < 0 else ""
        return f"{sign}{minutes // 60} h {minutes % 60:02d} min"
    if abs(seconds) >= 100 or seconds == int(seconds):
        return f"{seconds:.0f} s"
    if abs(seconds) >= 1:
        return f"{seconds:.1f} s"
    return f"{seconds * 1000:.0f} ms"


def _elapsed(seconds: float) -> str:
    """A moment as seconds into the run: ``150 s``, ``150.1 s``, ``250 ms``, ``T+13:00:05``."""
    if abs(seconds) >= _HOUR:
        whole = round(seconds)
        return f"T+{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    if seconds == int(seconds):
        return f"{seconds:.0f} s"
    if abs(seconds) < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


@dataclass(frozen=True, slots=True)
class RunClock:
    """Moments of one run: ``at(t)`` for ``t`` seconds on the run's clock."""

    origin: datetime | None
    long: bool

    @classmethod
    def of(cls, start: Any, end: float) -> RunClock:
        """The clock of a run whose scenario starts at ``start`` (ISO 8601, or None) and whose
        last moment is ``end`` seconds in."""
        origin = None
        if isinstance(start, str):
            try:
                origin = datetime.fromisoformat(start.replace("Z", "+00:00"))
            except ValueError:
                origin = None
        return cls(origin, end >= _HOUR)

    @property
    def time_of_day(self) -> bool:
        return self.origin is not None and self.long

    def at(self, seconds: float) -> str:
        if self.origin is None or not self.long:
            return _elapsed(seconds)
        moment = self.origin + timedelta(seconds=seconds)
        text = f"{moment:%H:%M:%S}"
        tenths = moment.microsecond // 100_000
        if tenths:
            text += f".{tenths}"
        days = (moment.date() - self.origin.date()).days
        return f"{text} (+{days} d)" if days else text

    def evidence(self, item: dict[str, Any]) -> str:
        """One evidence item as ``key=value, ...``: times as moments, other numbers short."""
        parts = []
        for key, value in item.items():
            if isinstance(value, float) and key in ("time", "start", "end"):
                shown = self.at(value)
            elif isinstance(value, float):
                shown = f"{value:.4g}"
            else:
                shown = str(value)
            parts.append(f"{key}={shown}")
        return ", ".join(parts)

    def script_attributes(self) -> str:
        """What the report's script needs to draw the same moments (body attributes)."""
        if not self.time_of_day:
            return ""
        assert self.origin is not None
        offset = self.origin.utcoffset() or timedelta(0)
        return (
            f" data-origin='{self.origin.timestamp()}' "
            f"data-origin-offset='{offset.total_seconds()}'"
        )
