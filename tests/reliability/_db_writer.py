"""A failure-database writer for the concurrency test: waits at a barrier, then adds a seed.

Run in processes forked from a fork server that imported the database once, so twelve of them
start in milliseconds and really write at the same moment."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def add_seed(root: Path, seed: int, barrier: Any) -> None:
    from harness.scenarios.failure_db import FailureDB, FailureEntry

    barrier.wait()
    FailureDB(root).add("h", "s", [FailureEntry("buggy", "fifo", seed, "o", "sig", "replay")])
