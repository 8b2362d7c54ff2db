"""Fault counts one target's interposers share: a one-shot fault fires once per server.

A runtime may start a server many times (a respawn after a failure, a process per call), and
each start runs an interposer of its own. In sim mode one ``FrameEngine`` state per target
counts every connection's frames (``FrameEngine.for_connection``); here the same state (frames
seen, hits, the seeded draw stream of every fault) lives in one JSON file, read and written
under an exclusive lock around each decision, so live counts as sim does.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from harness.chaos_random import ChaosRandom

__all__ = ["SharedCounts"]


class _Counted(Protocol):
    seen: int
    hits: int
    rng: ChaosRandom


class SharedCounts:
    """The counts of one target's faults in ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def hold(self, states: Mapping[str, _Counted]) -> Iterator[None]:
        """Load the shared counts into ``states``, let the caller decide, store them back;
        other processes wait meanwhile."""
        with self.path.open("a+", encoding="utf-8") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            file.seek(0)
            text = file.read()
            saved: dict[str, Any] = json.loads(text) if text.strip() else {}
            for name, state in states.items():
                if name in saved:
                    state.seen = int(saved[name]["seen"])
                    state.hits = int(saved[name]["hits"])
                    state.rng.setstate(saved[name]["rng"])
            try:
                yield
            finally:
                saved.update(
                    {
                        name: {"seen": s.seen, "hits": s.hits, "rng": s.rng.getstate()}
                        for name, s in states.items()
                    }
                )
                file.seek(0)
                file.truncate()
                file.write(json.dumps(saved))
                file.flush()
