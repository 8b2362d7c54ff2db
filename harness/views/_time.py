"""Run-clock times as people read them (the report's script mirrors this in ``fmt``)."""

from __future__ import annotations

__all__ = ["fmt"]


def fmt(seconds: float) -> str:
    """``250 ms``, ``1.5 s``, ``150 s``; from an hour on ``13:00:05`` (``13:00:05.2``)."""
    if abs(seconds) >= 3600:
        seconds = round(seconds, 1)
        whole = int(seconds)
        hours, rest = divmod(whole, 3600)
        text = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
        tenths = round((seconds - whole) * 10)
        return f"{text}.{tenths}" if 0 < tenths < 10 else text
    if abs(seconds) >= 100 or seconds == int(seconds):
        return f"{seconds:.0f} s"
    if abs(seconds) >= 1:
        return f"{seconds:.1f} s"
    return f"{seconds * 1000:.0f} ms"
